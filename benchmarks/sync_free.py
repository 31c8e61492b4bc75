"""The sync-free step loop: the harness's training loop reading the losses back every 32 steps (the default
`sync_every`) against reading them every step (`sync_every=1`, what the loop did before), same model, data and steps.
On CPU a read costs nothing to wait for (ratio about 1); on a GPU each per-step read makes the host wait for the
device (`cuda_sync_free`, in make gpu-check)."""

from __future__ import annotations

import tempfile

import torch

from bench.config import validate
from bench.runfolder.store import RunStore
from bench.train import Trainer
from benchmarks.common import alternate, compose_cfg, median, timed

STEPS = 1000


def harness(cfg) -> float:
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(validate(cfg), RunStore(d))  # building is not timed: only the loop
        seconds = timed(trainer.train)
    if cfg.device == "cuda":
        torch.cuda.synchronize()  # the loop ends with a read: nothing is left queued
    return seconds


def compare(device: str, model: list[str], repeats: int) -> tuple[float, float, str]:
    """(per-step reads, sync-free) median seconds of STEPS steps, and a description."""
    args = [f"steps={STEPS}", f"device={device}", "optimizer.lr=0.05", "checkpoint_every=0", *model]
    per_step, free = compose_cfg(*args, "sync_every=1"), compose_cfg(*args, "sync_every=32")
    harness(per_step), harness(free)  # warm-up
    times = alternate({"per_step": lambda: harness(per_step), "free": lambda: harness(free)}, repeats)
    return median(times["per_step"]), median(times["free"]), f"{STEPS} steps, batch 128, eval every 100"


def result(name: str, per_step: float, free: float, what: str) -> dict:
    return {
        "name": name,
        "ratio": per_step / free,
        "target": None,
        "absolute": f"read every step {per_step:.3f} s, every 32 steps {free:.3f} s ({what})",
    }


def run(repeats: int = 3) -> dict:
    per_step, free, what = compare("cpu", [], repeats)
    return result("sync-free loop: read every step / every 32 steps (CPU)", per_step, free, f"FCN-4-512, {what}")
