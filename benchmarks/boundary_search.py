"""Boundary search against the full grid on the demo grid (conf/sweep/demo.yaml, 36 runs): the runs and the wall
time each needs to give eta_max per T_wrm, and whether they agree. Target: at most 0.4 of the full grid's runs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, timed

SWEEP = ["-m", "sweep=demo", "threads=1"]


def _launch(folder: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "launch.py"), *SWEEP, f"hydra.sweep.dir={folder}", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sweep failed: {proc.stderr[-2000:]}")


def run(repeats: int = 1) -> dict:
    from analysis import eta_max, load_runs

    with tempfile.TemporaryDirectory() as d:
        full, bnd = Path(d) / "full", Path(d) / "boundary"
        full_s = timed(lambda: _launch(full))
        bnd_s = timed(lambda: _launch(bnd, "hydra/sweeper=boundary"))
        expected = eta_max(load_runs(full)).set_index("schedule.warmup_steps")["eta_max"].to_dict()
        rows = list(csv.DictReader((bnd / "boundary.csv").open()))
        got = {int(r["schedule.warmup_steps"]): float(r["eta_max"] or "nan") for r in rows}
        runs_full = sum(1 for _ in full.glob("*/result.json"))
        runs_bnd = sum(int(r["runs"]) for r in rows)
    same = all(got[w] == expected[w] or got[w] != got[w] and expected[w] != expected[w] for w in expected)
    return {
        "name": "boundary search / full grid, runs (demo grid, basic launcher)",
        "ratio": runs_bnd / runs_full,
        "target": 0.4,
        "better": "lower",
        "absolute": f"runs {runs_bnd} / {runs_full}, wall {bnd_s:.0f} s / {full_s:.0f} s "
        f"({bnd_s / full_s:.2f}); eta_max {'the same' if same else f'DIFFERS: {got} vs {expected}'}",
        "eta_max": {str(k): v for k, v in got.items()},
        "times": {"full": [full_s], "boundary": [bnd_s]},
    }
