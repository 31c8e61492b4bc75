"""Packed sweeps (hydra.launcher.ensemble=K, bench/sweeps/packs.py): the local launcher trains a sweep's compatible
points
in fewer jobs and writes the run folders the unpacked sweep writes (to float tolerance), with one JobReturn per
point in sweep order; catapult points run alone; finished points are not retrained; a point locked by another
launch, or whose folder holds another config's run, is left alone; a point's failure stays in its own folder; a bad
K is one line before anything runs; a pack signalled before its time limit checkpoints, is requeued and resumes."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import threading
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

import bench.train
from bench.errors import ConfigError
from bench.sweeps import packs
from bench.sweeps.lock import LOCK
from bench.sweeps.preflight import compose_error
from tests.conftest import Stops, compose_cfg, launch, multirun
from tests.helpers import LAUNCH_KEYS, tiny_run
from tests.test_slurm import slurm  # noqa: F401  (the fixture: a running local SLURM cluster)

TINY = tiny_run("model.width=16")
LOCAL = ["hydra/launcher=local", "hydra.launcher.cpus_per_task=1", "hydra.launcher.max_parallel=2"]
GRID = ["schedule=linear,cosine,catapult"]  # 2 packable points (their schedules differ), 1 catapult point
NOT_COMPARED = {*LAUNCH_KEYS, "packed_with", "host"}  # a packed run records its pack


# --- the grouping ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 2.5, "4", True, None])
def test_a_bad_ensemble_size_is_one_line(k):
    with pytest.raises(ConfigError, match=r"^hydra.launcher.ensemble=.*: must be an integer >= 1") as e:
        packs.ensemble_size(k)
    assert "\n" not in str(e.value)


def test_equal_keys_fill_packs_of_at_most_k_in_sweep_order():
    keys = ["a", None, "a", "b", "a", "a", "a"]
    assert packs.group(keys, 2) == [[0, 2], [1], [3], [4, 5], [6]]
    assert packs.group(keys, 8) == [[0, 2, 4, 5, 6], [1], [3]]
    assert packs.group(keys, 1) == [[i] for i in range(7)]


# --- one pack job's points: lock, identity, failures (in process) ------------------------------------------------


def _points(tmp_path, *extra: list[str]) -> list[packs.Point]:
    cfgs = [compose_cfg(*TINY, f"optimizer.lr={lr}", f"seed={i}", *more) for i, (lr, more) in enumerate(extra)]
    return [packs.Point(None, cfg, tmp_path / f"p{i}", JobReturn()) for i, cfg in enumerate(cfgs)]  # type: ignore


def test_a_locked_point_is_left_alone_and_another_configs_folder_is_refused(tmp_path):
    points = _points(tmp_path, (0.05, []), (0.1, []), (0.2, []), (0.3, []))
    points[1].dir.mkdir()
    (points[1].dir / LOCK).write_text(json.dumps({"host": "elsewhere", "pid": 1}))  # fresh heartbeat: respected
    bench.train.run(compose_cfg(*TINY, "optimizer.lr=0.9"), points[2].dir)  # another config's finished run
    before = sorted(p.name for p in points[2].dir.iterdir())
    with ExitStack() as locks:
        packs.train_members(points, locks)
    assert [p.result["status"] for p in points if p.result] == ["completed", "running elsewhere", "completed"]
    assert points[0].result["packed_with"] == points[3].result["packed_with"] == 2
    assert sorted(p.name for p in points[1].dir.iterdir()) == [LOCK], "nothing written into a locked folder"
    assert type(points[2].error).__name__ == "IdentityMismatch" and points[2].result is None
    assert sorted(p.name for p in points[2].dir.iterdir()) == before, "another config's folder is not touched"
    assert not any((p.dir / LOCK).exists() for p in (points[0], points[3])), "locks released"


def test_two_points_of_a_pack_never_share_a_folder(tmp_path):
    points = _points(tmp_path, (0.05, []), (0.1, []))
    points[1].dir = points[0].dir  # e.g. hydra.sweep.subdir=${hydra.job.id}: one id for the whole pack
    with ExitStack() as locks:
        packs.train_members(points, locks)
    assert points[0].result["status"] == "completed" and "packed_with" not in points[0].result
    assert isinstance(points[1].error, ConfigError) and "also another point's folder" in str(points[1].error)


def test_a_failed_point_fails_in_its_own_folder_only(tmp_path, monkeypatch):
    """Member 1 cannot be built: the pack stops; members 0 and 2 are retrained alone and complete, equal to the
    same points trained alone; only member 1's folder records a failure."""
    real = bench.train.Trainer.__init__

    def broken_for_seed_1(self, cfg, *args, **kwargs):
        if cfg.seed == 1:
            raise RuntimeError("seed 1 is broken")
        real(self, cfg, *args, **kwargs)

    monkeypatch.setattr(bench.train.Trainer, "__init__", broken_for_seed_1)
    points = _points(tmp_path, (0.05, []), (0.1, []), (0.2, ["schedule.warmup_steps=4"]))
    with ExitStack() as locks:
        packs.train_members(points, locks)
    assert str(points[1].error) == "seed 1 is broken" and points[1].result is None
    failed = json.loads((points[1].dir / "result.json").read_text())
    assert failed["status"] == "failed" and "seed 1 is broken" in failed["error"]
    for i in (0, 2):
        assert points[i].error is None and points[i].result["status"] == "completed"
        assert "packed_with" not in points[i].result, "retrained alone"
        alone = tmp_path / f"alone{i}"
        bench.train.run(points[i].task, alone)
        _assert_same_folder(points[i].dir, alone)


# --- real multiruns ----------------------------------------------------------------------------------------------


def _jobs(sweep: Path) -> set[str]:
    return {p.parent.name for p in sweep.glob(".submitit/*/*_submitted.pkl")}


def _folders(sweep: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sweep.glob("*/result.json")}


def _assert_same_folder(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv"), rtol=1e-5, atol=1e-6)
    ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
    assert set(ra) - {"packed_with"} == set(rb) - {"packed_with"}
    for key in set(ra) - NOT_COMPARED - {"packed_with"}:
        if isinstance(ra[key], float):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), key
        else:
            assert rb[key] == ra[key], key
    assert (a / "config.yaml").read_text() == (b / "config.yaml").read_text()


@pytest.mark.slow
def test_a_packed_sweep_writes_the_unpacked_sweeps_folders_in_fewer_jobs(tmp_path):
    """The unpacked sweep (its folders, its JobReturns in sweep order) is Hydra's basic launcher in this process: the
    same sweeper, folder names and training as one local job per point (tests/test_sweeps.py runs those); the packed
    sweep goes through the local launcher's jobs."""
    e1, e4 = tmp_path / "e1", tmp_path / "e4"
    alone = multirun(*GRID, *TINY, f"hydra.sweep.dir={e1}")
    packed = multirun(*GRID, *TINY, *LOCAL, "hydra.launcher.ensemble=4", f"hydra.sweep.dir={e4}")
    assert len(alone) == 3 and len(_jobs(e4)) == 2, "one pack of the linear and cosine points, one catapult job"
    assert [r.overrides for r in packed] == [r.overrides for r in alone], "one JobReturn per point, in sweep order"
    folders1, folders4 = _folders(e1), _folders(e4)
    assert sorted(folders1) == sorted(folders4) and len(folders4) == 3
    for ret in packed:
        assert ret.status == JobStatus.COMPLETED
        folder = Path(ret.hydra_cfg.hydra.runtime.output_dir)
        result = json.loads((folder / "result.json").read_text())
        assert ret.return_value == result["best_test_acc"], "each point returns its own objective"
        assert result.get("packed_with") == (None if "schedule=catapult" in ret.overrides else 2)
        assert (folder / ".hydra" / "overrides.yaml").exists() and (folder / "launch.log").exists()
    for name in folders1:
        _assert_same_folder(folders1[name], folders4[name])

    # relaunched with the packed points unfinished: only those train, again as one pack in one new job; the finished
    # catapult point returns its objective without a job
    redo = [n for n in folders4 if "schedule=catapult" not in n]
    assert len(redo) == 2
    for name in redo:
        (folders4[name] / "result.json").unlink()
    jobs_before = _jobs(e4)
    again = multirun(*GRID, *TINY, *LOCAL, "hydra.launcher.ensemble=4", f"hydra.sweep.dir={e4}")
    assert len(_jobs(e4) - jobs_before) == 1
    assert [r.return_value for r in again] == [r.return_value for r in packed]
    for name in redo:
        assert json.loads((folders4[name] / "result.json").read_text())["packed_with"] == 2
        _assert_same_folder(folders1[name], folders4[name])


@pytest.mark.slow
def test_a_bad_ensemble_is_refused_before_the_sweep_starts(tmp_path):
    """`launch.py -m ... hydra.launcher.ensemble=0` is one line and exit status 1; the other bad values go through the
    same multirun in this process (a bad type fails in composition, a bad int in the launcher's setup) and the CLI's
    conversion to one line (bench.sweeps.preflight.compose_error)."""
    proc = launch("-m", *GRID, *TINY, *LOCAL, "hydra.launcher.ensemble=0", f"hydra.sweep.dir={tmp_path}/0")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: hydra.launcher.ensemble=0: ")
    assert not (tmp_path / "0").exists(), "nothing launched, no folder made"
    for k in ("-3", "two"):
        with pytest.raises((ConfigError, HydraException, OmegaConfBaseException)) as e:
            multirun(*GRID, *TINY, *LOCAL, f"hydra.launcher.ensemble={k}", f"hydra.sweep.dir={tmp_path}/{k}")
        line = str(compose_error(e.value))
        assert line.startswith(f"hydra.launcher.ensemble={k}: ") and "\n" not in line, line
        assert not (tmp_path / k).exists(), "nothing launched, no folder made"


@pytest.mark.slow
@pytest.mark.racing
def test_a_signalled_pack_checkpoints_is_requeued_and_resumes(tmp_path, monkeypatch):
    """SIGUSR2 (what submitit sends before the time limit, or a preemption) to a pack's job: every member saves its
    checkpoint, the job is requeued with the same points, and both members resume and complete. The launcher runs in
    this process (as launch.py runs it); the job is its own process, which waits after its first checkpoint
    (tests/stops: step 50, both members training) and is signalled there."""
    sweep = tmp_path / "sweep"
    run = ["model.width=16", "model.depth=2", "steps=200", "eval_every=50", "checkpoint_every=50", "batch_size=64"]
    run += ["device=cpu"]
    stops = Stops(tmp_path / "stops")
    for key, value in stops.env().items():  # for the job processes the launcher starts
        monkeypatch.setenv(key, value)
    done, signalled = threading.Event(), []

    def signal_the_pack_where_it_stopped() -> None:
        (holder,) = stops.wait(alive=lambda: not done.is_set())
        os.kill(holder, signal.SIGUSR2)
        signalled.append(holder)
        stops.release()

    thread = threading.Thread(target=signal_the_pack_where_it_stopped, daemon=True)
    thread.start()
    with stops:
        try:
            returns = multirun(
                "optimizer.lr=0.02,0.05", *run, *LOCAL, "hydra.launcher.ensemble=2", f"hydra.sweep.dir={sweep}"
            )
        finally:
            done.set()
            thread.join()
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert signalled, logs[-3000:]
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 2, logs[-3000:]
    assert len(_jobs(sweep)) == 1
    results = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert [(r["status"], r["stop_step"]) for r in results] == [("completed", 200)] * 2
    assert "packed run checkpointed on SIGUSR2" in logs and "Requeued job" in logs, logs[-3000:]
    assert logs.count("resumed from") == 2, "both members resume from their checkpoints"
    (pkl,) = sweep.glob(".submitit/*/*_result.pkl")
    status, job_returns = pickle.loads(pkl.read_bytes())
    assert status == "success" and [r.status for r in job_returns] == [JobStatus.COMPLETED] * 2
    assert not any(math.isnan(r.return_value) for r in job_returns)


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_a_packed_sweep_on_slurm_is_one_array_with_a_pack_per_element(tmp_path):
    """The SLURM launcher groups as the local one does: 2 linear points in one array element, the 2 catapult points
    in one each; every point completes in its own folder, the packed ones equal to the same points trained alone."""
    from tests.test_slurm import job_ids, sacct_states

    sweep = tmp_path / "sweep"
    grid = ["optimizer.lr=0.05,0.1", "schedule=linear,catapult"]
    proc = launch("-m", *grid, *TINY, "hydra/launcher=slurm", "hydra.launcher.ensemble=4", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    elements = job_ids(sweep)
    assert len({j.split("_")[0] for j in elements}) == 1 and len(elements) == 3, elements
    assert sorted(sacct_states(elements[0].split("_")[0]).values()) == ["COMPLETED"] * 3
    folders = _folders(sweep)
    assert len(folders) == 4
    for name, folder in folders.items():
        result = json.loads((folder / "result.json").read_text())
        assert result["status"] == "completed"
        linear = "schedule=catapult" not in name  # the default group, stated, names no folder (bench/runfolder)
        assert result.get("packed_with") == (2 if linear else None)
        if linear:
            lr = "0.05" if "lr=0.05," in name else "0.1"
            bench.train.run(compose_cfg(*TINY, f"optimizer.lr={lr}", "schedule=linear"), tmp_path / name)
            _assert_same_folder(folder, tmp_path / name)
