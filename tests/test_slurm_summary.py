"""A SLURM sweep ends as a local one does (bench.sweeps.summary): a cancelled element is a failed point and the launcher
ends with the sweep's one-line summary, not submitit's UncompletedJobError traceback; an sbatch refusal leaves no
files under .submitit/. On the shared cluster of tests/test_slurm.py (its fixture)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import HANG_S, Stops, multirun
from tests.test_slurm import (  # noqa: F401  (slurm: the cluster's fixture; _no_stray_launcher: kills at the end)
    SLURM,
    TINY,
    _no_stray_launcher,
    job_ids,
    slurm,
    slurm_cmd,
    start_launch,
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


@pytest.mark.racing
def test_a_cancelled_element_ends_the_sweep_with_its_summary_slurm(tmp_path):
    """Point 1 is cancelled (scancel) where it waits after its first checkpoint (tests/stops): whatever the machine's
    speed, it is cancelled while it runs; point 0 goes on."""
    sweep = tmp_path / "sweep"
    args = ["-m", "optimizer.lr=0.25,0.5", *TINY, "steps=200", "eval_every=50", "checkpoint_every=50", *SLURM]
    with Stops(tmp_path / "stops") as stops:
        proc = start_launch(*args, f"hydra.sweep.dir={sweep}", log=tmp_path / "launch.log", env=stops.env())
        while True:
            stopped = stops.wait(alive=lambda: proc.poll() is None)
            if point_1 := [folder for folder in stopped.values() if "lr=0.5," in folder.name]:
                break
            for pid in stopped:  # point 0: it goes on
                stops.go(pid)
        (victim,) = point_1
        (array,) = {j.split("_")[0] for j in job_ids(sweep)}
        slurm_cmd("scancel", f"{array}_1")
        stops.release()
    assert proc.wait(timeout=HANG_S) == 1
    log = (tmp_path / "launch.log").read_text()
    assert "Traceback" not in log and "UncompletedJobError" not in log.split("died:")[-1], log[-3000:]
    assert log.strip().splitlines()[-1] == (
        "error: the sweep ended with failed points: 2 points: 1 completed, 0 diverged, 1 failed, "
        f"0 skipped (running elsewhere), 0 unfinished; see: python -m analysis status {sweep}"
    ), log[-3000:]
    assert json.loads((victim / "result.json").read_text())["status"] == "failed"
