"""Divergence savings: a grid where half the points diverge, with early stopping on and off (same runs, one
process, alternating). Ratio = time without early stopping / time with it."""

from __future__ import annotations

import tempfile

from bench.config import validate
from bench.runfolder.store import RunStore
from bench.train import Trainer
from benchmarks.common import alternate, compose_cfg, median, timed

LRS = (0.03, 0.06, 0.09, 0.125, 1.0, 2.0, 4.0, 8.0)  # FCN-4-512 on mnist5k, no warmup: the last four diverge
STEPS = 300


def grid(stop: bool) -> float:
    total = 0.0
    for lr in LRS:
        cfg = compose_cfg(f"optimizer.lr={lr}", f"steps={STEPS}", "device=cpu", f"stop_on_divergence={stop}")
        with tempfile.TemporaryDirectory() as d:
            trainer = Trainer(validate(cfg), RunStore(d))
            total += timed(trainer.train)
    return total


def run(repeats: int = 3) -> dict:
    times = alternate({"early stop": lambda: grid(True), "no early stop": lambda: grid(False)}, repeats)
    on, off = median(times["early stop"]), median(times["no early stop"])
    return {
        "name": "divergence savings (grid time without / with early stopping; half the grid diverges)",
        "ratio": off / on,
        "target": 1.5,
        "better": "higher",
        "absolute": f"with early stopping {on:.2f} s, without {off:.2f} s ({len(LRS)} runs x {STEPS} steps)",
        "times": times,
    }
