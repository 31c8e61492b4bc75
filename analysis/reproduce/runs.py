"""The CPU presets `make reproduce` runs, and running them: each as a multirun of launch.py through the local
launcher, in a subprocess (this package reads run folders only and imports no training code)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the CPU-scale presets `make reproduce` runs, in the paper's order: conf/experiment/cpu/<name>.yaml
FIGURES = {
    "fig1_fcn_mechanisms": "Figure 1",
    "fig2_fcn_adam_mechanisms": "Figure 2",
    "fig3_wrn_sp_mse": "Figure 3 (SP, MSE)",
    "fig3_wrn_mup_mse": "Figure 3 (muP, MSE)",
    "fig3_wrn_mup_xent": "Figure 3 (muP, cross-entropy)",
    "fig3_wrn_sp_xent": "Figure 3 (SP, cross-entropy)",
    "fig4_transformer_adam": "Figure 4 (image task)",
    "fig5_catapult_warmup": "Figure 5",
    "fig6_gi_adam_mechanisms": "Figure 6",
    "fig7_persistent_catapult": "Figure 7",
    "untuned_vs_linear_vs_gi": "Figure 4 and Ma & Yarats (2021)",
}


def sweep_command(name: str, sweep: Path, jobs: int) -> list[str]:
    """One CPU preset as a multirun of launch.py through the local launcher: `jobs` job processes, one thread each."""
    return [
        sys.executable,
        str(ROOT / "launch.py"),
        "-m",
        f"experiment=cpu/{name}",
        "hydra/launcher=local",
        f"hydra.launcher.max_parallel={jobs}",
        "threads=1",
        "device=cpu",
        f"hydra.sweep.dir={sweep}",
    ]


def run_sweep(name: str, out: Path, jobs: int, resume: bool = False) -> float:
    """One preset into out/name; returns its wall time. Its log goes to out/name.log. Without `resume` the folder is
    emptied first, so that the time measured is that of every run (with it, the launcher skips finished points)."""
    sweep = out / name
    if not resume:
        shutil.rmtree(sweep, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    start = time.time()
    with open(out / f"{name}.log", "w") as log:
        proc = subprocess.run(sweep_command(name, sweep, jobs), cwd=ROOT, env=env, stdout=log, stderr=log)
    wall = time.time() - start
    status = "done" if proc.returncode == 0 else f"exit {proc.returncode} (see {out / name}.log)"
    print(f"[reproduce] {name}: {status} in {wall / 60:.1f} min", flush=True)
    return wall


def run_all(names: list[str], out: Path, jobs: int, resume: bool = False) -> dict[str, float]:
    """The presets one after another (the launcher runs `jobs` points of each at a time); timing.json in `out` keeps
    each sweep's latest wall time."""
    out.mkdir(parents=True, exist_ok=True)
    walls = {}
    for name in names:
        walls[name] = run_sweep(name, out, jobs, resume)
        timing = out / "timing.json"
        known = json.loads(timing.read_text()) if timing.exists() else {}
        timing.write_text(json.dumps({**known, name: walls[name]}, indent=2))
    return walls
