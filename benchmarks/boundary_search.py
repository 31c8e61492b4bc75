"""Boundary search against the full grid: the runs and the wall time each needs to give eta_max per T_wrm, and
whether they agree (analysis.eta_max of the full grid, the phase diagram's rule: every seed trains). On the demo grid
(conf/sweep/demo.yaml, 36 runs); benchmarks/boundary_search_fig3.py does the same on a CPU Figure 3 preset. Both with
the basic launcher, one process, 1 thread. Target: at most 0.4 of the full grid's runs."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, timed

TARGET = 0.4


def _launch(sweep: list[str], folder: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "launch.py"), "-m", *sweep, "threads=1", f"hydra.sweep.dir={folder}", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sweep failed: {proc.stderr[-2000:]}")


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare(sweep: list[str], label: str) -> dict:
    """Full grid, then the boundary search in a fresh folder (nothing reused): runs, wall time, eta_max of each."""
    from analysis import eta_max, load_runs

    with tempfile.TemporaryDirectory() as d:
        full, bnd = Path(d) / "full", Path(d) / "boundary"
        full_s = timed(lambda: _launch(sweep, full))
        bnd_s = timed(lambda: _launch(sweep, bnd, "hydra/sweeper=boundary"))
        expected = eta_max(load_runs(full)).set_index("schedule.warmup_steps")["eta_max"].to_dict()
        rows = list(csv.DictReader((bnd / "boundary.csv").open()))
        got = {int(r["schedule.warmup_steps"]): float(r["eta_max"] or "nan") for r in rows}
        runs_full = sum(1 for _ in full.glob("*/result.json"))
        runs_bnd = sum(int(r["runs"]) for r in rows)
        assert runs_bnd == sum(1 for _ in bnd.glob("*/result.json")), "boundary.csv counts the runs it made"
    same = got.keys() == expected.keys() and all(_same(got[w], expected[w]) for w in expected)
    shown = ", ".join(f"{w}: {got[w]:g}" for w in sorted(got))
    return {
        "name": f"boundary search / full grid, runs ({label}, basic launcher)",
        "ratio": runs_bnd / runs_full,
        "target": TARGET,
        "better": "lower",
        "absolute": f"runs {runs_bnd} / {runs_full}, wall {bnd_s:.0f} s / {full_s:.0f} s "
        f"({bnd_s / full_s:.2f}); eta_max per T_wrm "
        + (f"the same ({shown})" if same else f"DIFFERS: boundary {got}, full grid {expected}"),
        "eta_max": {str(k): v for k, v in got.items()},
        "eta_max_full": {str(k): v for k, v in expected.items()},
        "same_eta_max": same,
        "runs": {"full": runs_full, "boundary": runs_bnd},
        "times": {"full": [full_s], "boundary": [bnd_s]},
    }


def run(repeats: int = 1) -> dict:
    return compare(["sweep=demo"], "demo grid, 36 runs")
