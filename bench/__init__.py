"""warmup-bench: a reproducible harness for learning-rate warmup research (Kalra & Barkeshli, NeurIPS 2024)."""

from __future__ import annotations


def run(cfg, run_dir=None):
    """Train one run from a composed config (see bench.train.run), under its folder's lock (bench.lock): a run that
    another live process is training is skipped ({"status": "running elsewhere"})."""
    from bench.lock import locked_run

    return locked_run(cfg, run_dir)


def objective(cfg, result: dict) -> float:
    """What a run returns to Hydra's sweeper: result.json's `cfg.objective` value; a run that did not complete
    (diverged, failed, running elsewhere) returns the objective's penalty, the worst value it can take
    (bench.config.OBJECTIVES: 0 for an accuracy, inf for a loss): NaN would fail an Optuna trial, and its study."""
    import math

    from bench.config import OBJECTIVES

    value = float(result.get(cfg.objective, math.nan)) if result.get("status") == "completed" else math.nan
    return OBJECTIVES[cfg.objective] if math.isnan(value) else value
