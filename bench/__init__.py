"""warmup-bench: a reproducible harness for learning-rate warmup research (Kalra & Barkeshli, NeurIPS 2024)."""

from __future__ import annotations


def run(cfg, run_dir=None):
    """Train one run from a composed config (see bench.train.run)."""
    from bench.train import run as _run

    return _run(cfg, run_dir)
