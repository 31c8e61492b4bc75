"""A SLURM sweep ends as a local one does (bench.sweeps.summary): a cancelled element is a failed point and the launcher
ends with the sweep's one-line summary, not submitit's UncompletedJobError traceback; an sbatch refusal leaves no
files under .submitit/. On the shared cluster of tests/test_slurm.py (its fixture)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import multirun
from tests.test_slurm import (  # noqa: F401  (slurm: the cluster's fixture; _no_stray_launcher: kills at the end)
    SLURM,
    TINY,
    _no_stray_launcher,
    job_ids,
    slurm,
    slurm_cmd,
    start_launch,
    wait_for,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm")]


def test_an_sbatch_refusal_leaves_no_files_slurm(tmp_path):
    sweep = tmp_path / "sweep"
    with pytest.raises(SystemExit, match="^error: sbatch refused the job array: "):
        multirun(
            "optimizer.lr=0.25,0.5",
            *TINY,
            "steps=4",
            *SLURM,
            "hydra.launcher.mem_gb=100000",
            f"hydra.sweep.dir={sweep}",
        )
    assert not (sweep / ".submitit").exists(), sorted(p.name for p in (sweep / ".submitit").rglob("*"))


def test_a_cancelled_element_ends_the_sweep_with_its_summary_slurm(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "optimizer.lr=0.25,0.5", *TINY, "steps=1000", "eval_every=50", *SLURM, f"hydra.sweep.dir={sweep}"]
    proc = start_launch(*args, log=tmp_path / "launch.log")
    (victim,) = wait_for("point 1 training", lambda: list(sweep.glob("*lr=0.5,*/metrics.csv")), timeout=180)
    (array,) = {j.split("_")[0] for j in job_ids(sweep)}
    slurm_cmd("scancel", f"{array}_1")
    assert proc.wait(timeout=240) == 1
    log = (tmp_path / "launch.log").read_text()
    assert "Traceback" not in log and "UncompletedJobError" not in log.split("died:")[-1], log[-3000:]
    assert log.strip().splitlines()[-1] == (
        "error: the sweep ended with failed points: 2 points: 1 completed, 0 diverged, 1 failed, "
        f"0 skipped (running elsewhere), 0 unfinished; see: python -m analysis status {sweep}"
    ), log[-3000:]
    assert json.loads((victim.parent / "result.json").read_text())["status"] == "failed"
