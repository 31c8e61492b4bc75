"""warmup-bench: a reproducible harness for learning-rate warmup research (Kalra & Barkeshli, NeurIPS 2024)."""

from __future__ import annotations


def run(cfg, run_dir=None):
    """Train one run from a composed config (see bench.train.run), under its folder's lock (bench.sweeps.lock): a run
    that
    another live process is training is skipped ({"status": "running elsewhere"})."""
    from bench.sweeps.lock import locked_run

    return locked_run(cfg, run_dir)


class Outcome(float):
    """What a job returns to the sweeper (JobReturn.return_value): a float for Hydra's sweepers (the objective), and
    `status`, the run's outcome: completed | diverged | failed, or "running elsewhere"
    (bench.sweeps.lock.RUNNING_ELSEWHERE):
    skipped, not trained, because another launch holds the point's lock; the point is not finished."""

    status: str

    def __new__(cls, value: float, status: str) -> Outcome:
        out = super().__new__(cls, value)
        out.status = status
        return out

    def __reduce__(self):  # a job's return crosses processes (submitit pickles it)
        return Outcome, (float(self), self.status)

    def __repr__(self) -> str:
        return f"Outcome({float(self)!r}, {self.status!r})"


def objective(cfg, result: dict) -> Outcome:
    """What a run returns to Hydra's sweeper: result.json's `cfg.objective` value; a run that did not complete
    (diverged, failed, running elsewhere) returns the objective's penalty, the worst value it can take
    (bench.config.OBJECTIVES: 0 for an accuracy, inf for a loss): NaN would fail an Optuna trial, and its study. Its
    status rides along (Outcome.status)."""
    import math

    from bench.config import OBJECTIVES

    status = str(result.get("status"))
    value = float(result.get(cfg.objective, math.nan)) if status == "completed" else math.nan
    return Outcome(OBJECTIVES[cfg.objective] if math.isnan(value) else value, status)


def outcome(ret) -> str | None:
    """A JobReturn's run status (Outcome.status): "completed", "running elsewhere", ...; None when the job failed
    without one (its exception is the return value)."""
    return getattr(getattr(ret, "_return_value", None), "status", None)
