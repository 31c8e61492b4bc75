"""Packed runs (bench/ensemble.py): K FCN-4-512 points (different eta_trgt, T_wrm and seed) trained as one pack
against the same K points trained one after another in the same process (bench.run each). Reported as a ratio
(separate / packed time, higher is better); no target: the ratio is what it is on this machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import ensemble
from bench.train import run as run_alone
from benchmarks.common import alternate, compose_cfg, median, timed

# threads=1: both contenders on one core (this machine is shared; a fair, quieter comparison)
RUN = ["model=fcn", "model.depth=4", "model.width=512", "batch_size=128", "eval_every=100", "checkpoint_every=0"]


def points(k: int, steps: int, device: str, *extra: str) -> list:
    lrs, warmups = (0.02, 0.04, 0.06, 0.08), (1, 16, 64, 128)
    return [
        compose_cfg(
            *RUN,
            f"steps={steps}",
            f"device={device}",
            f"optimizer.lr={lrs[i % 4]}",
            f"schedule.warmup_steps={warmups[(i // 4) % 4]}",
            f"seed={i // 16}",
            *extra,
        )
        for i in range(k)
    ]


def separate(cfgs) -> float:
    with tempfile.TemporaryDirectory() as d:
        return timed(lambda: [run_alone(c, Path(d) / str(i)) for i, c in enumerate(cfgs)])


def packed(cfgs) -> float:
    with tempfile.TemporaryDirectory() as d:
        return timed(lambda: ensemble.run_packed(cfgs, [Path(d) / str(i) for i in range(len(cfgs))]))


def compare(k: int, steps: int, device: str, repeats: int, *extra: str) -> tuple[float, float]:
    cfgs = points(k, steps, device, *extra)
    times = alternate({"separate": lambda: separate(cfgs), "packed": lambda: packed(cfgs)}, repeats)
    return median(times["separate"]), median(times["packed"])


def run(repeats: int = 2, k: int = 8, steps: int = 200) -> dict:
    sep, pack = compare(k, steps, "cpu", repeats, "threads=1")
    return {
        "name": f"packed runs on CPU (K={k}: {k} separate runs in one process / one pack)",
        "ratio": sep / pack,
        "target": None,
        "better": "higher",
        "absolute": f"{k} separate runs {sep:.1f} s, one pack of {k} {pack:.1f} s "
        f"(FCN-4-512, batch 128, {steps} steps)",
    }
