"""Sweep throughput: a 16-point grid of short runs through the project's local launcher (submitit_local, one
process per run, max_parallel runs at a time with one torch thread each) against the same runs one after another
in one process (Hydra's basic launcher, torch's default threads). Target: at least 1.5x."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from benchmarks.common import ROOT, alternate, median, timed

GRID = ["optimizer.lr=0.02,0.04,0.06,0.08", "schedule.warmup_steps=1,16,64,128"]
RUN = ["steps=300", "eval_every=100", "device=cpu"]


def sweep(*launcher: str) -> float:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, str(ROOT / "launch.py"), "-m", *GRID, *RUN, f"hydra.sweep.dir={d}", *launcher]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def go():
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"sweep failed: {proc.stderr[-2000:]}")

        seconds = timed(go)
        done = sum(1 for _, _, files in os.walk(d) if "result.json" in files)
        if done != 16:
            raise RuntimeError(f"sweep wrote {done} results, not 16")
        return seconds


def run(repeats: int = 2) -> dict:
    cores = os.cpu_count() or 1
    local = ("hydra/launcher=local", f"hydra.launcher.max_parallel={cores}", "hydra.launcher.cpus_per_task=1")
    times = alternate({"one process": lambda: sweep(), "local launcher": lambda: sweep(*local)}, repeats)
    seq, par = median(times["one process"]), median(times["local launcher"])
    return {
        "name": f"sweep throughput (16 runs: one process / local launcher, {cores} at a time x 1 thread)",
        "ratio": seq / par,
        "target": 1.5,
        "better": "higher",
        "absolute": f"one process {seq:.1f} s, local launcher {par:.1f} s (FCN-4-512, 300 steps a run)",
        "times": times,
    }
