"""Locks (issue 24): a point held by another launch is never read as a result. The boundary search waits for it (two
searches on one folder at once, and a SIGKILLed local search relaunched, give the boundary of an uninterrupted one);
a sweep that skipped points as running elsewhere says so and is not complete; a single run skipped so exits non-zero;
a lock without a heartbeat for the limit is stale whatever its pid."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import time
from pathlib import Path

import pytest

from bench import Outcome, objective, outcome
from bench.sweeps.lock import LOCK, RUNNING_ELSEWHERE, Incomplete, RunLock, check_complete
from tests.conftest import multirun, run_in_process
from tests.helpers import tiny_run
from tests.test_launchers import LOCAL, _start

# a boundary search of two rows (T_wrm 1, 16) over four rates: 5 runs of a fraction of a second each, a boundary that
# differs between the rows (eta_max 1 and 4 on main)
TINY = tiny_run("steps=40", "eval_every=20", "threads=1")
SEARCH = [
    "-m",
    "hydra/sweeper=boundary",
    "hydra.sweeper.poll_s=0.2",
    "optimizer.lr=0.25,1,4,16",
    "schedule.warmup_steps=1,16",
    *TINY,
]


def _lock(folder: Path, pid: int, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": time.time() - age_s}))
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_a_stale_lock_of_a_reused_pid_is_taken_over(tmp_path, tiny):
    """This host, pid 1 (alive: init), heartbeat two days old: stale, taken over, and the run trains."""
    run = tmp_path / "run"
    _lock(run, 1, 2 * 86400)
    assert RunLock(run).live_holder() is None
    run_in_process(*tiny, f"hydra.run.dir={run}")
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    assert not (run / LOCK).exists()


def test_a_fresh_lock_of_a_live_pid_is_held_and_a_skipped_single_run_exits_non_zero(tmp_path, tiny):
    run = tmp_path / "run"
    _lock(run, 1, 5)
    holder, age = RunLock(run).live_holder()
    assert holder["pid"] == 1 and 4 < age < 60
    with pytest.raises(SystemExit) as stop:
        run_in_process(*tiny, f"hydra.run.dir={run}")
    line = str(stop.value.code)
    assert line.startswith("error: ") and "running elsewhere" in line and "pid 1" in line and "\n" not in line
    assert not (run / "result.json").exists()


def test_a_sweep_with_points_running_elsewhere_is_not_complete(tmp_path, tiny, capsys):
    """One point held by a live process: the other trains, the sweep says how many were skipped and is incomplete;
    the job returns tell the skipped point (Outcome.status) from the trained one."""
    sweep = tmp_path / "sweep"
    multirun(*tiny, "seed=0,1", f"hydra.sweep.dir={sweep}")  # the folders' names
    held = next(sweep.glob("*,seed=0,*"))
    for f in held.iterdir():
        if f.is_file():
            f.unlink()
    _lock(held, 1, 5)
    with pytest.raises(Incomplete, match="1 of 2 points skipped as running elsewhere"):
        multirun(*tiny, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert "1 of 2 points skipped as running elsewhere" in capsys.readouterr().out  # on the console
    assert not (held / "result.json").exists()


def test_job_returns_carry_the_run_outcome():
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"objective": "final_test_acc"})
    done = objective(cfg, {"status": "completed", "final_test_acc": 0.5})
    skipped = objective(cfg, {"status": RUNNING_ELSEWHERE})
    assert float(done) == 0.5 and done.status == "completed"
    # not completed: the penalty (the worst value, bench.config.OBJECTIVES), so an optimizing sweeper goes on
    assert float(skipped) == 0.0 and skipped.status == RUNNING_ELSEWHERE
    assert pickle.loads(pickle.dumps(skipped)).status == RUNNING_ELSEWHERE
    rets = [JobReturn(overrides=["a=1"], status=JobStatus.COMPLETED, _return_value=r) for r in (done, skipped)]
    assert [outcome(r) for r in rets] == ["completed", RUNNING_ELSEWHERE]
    assert isinstance(rets[1].return_value, Outcome)
    with pytest.raises(Incomplete, match="1 of 2 points .* a=1"):
        check_complete([rets])
    check_complete([rets[:1]])  # nothing skipped: complete


def _boundary(sweep: Path) -> str:
    return (sweep / "boundary.csv").read_text()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> str:
    sweep = tmp_path_factory.mktemp("reference") / "sweep"
    multirun(*SEARCH[1:], f"hydra.sweep.dir={sweep}")
    return _boundary(sweep)


def _wait_for(predicate, proc, what: str, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (found := predicate()) is not None:
            return found
        assert proc.poll() is None, f"ended before {what}"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _first_lock(sweep: Path) -> dict | None:
    for path in sweep.glob(f"*/{LOCK}"):
        try:
            return json.loads(path.read_text()) | {"dir": path.parent}
        except (OSError, ValueError):
            pass
    return None


def _waiting(log: Path):
    return True if "waiting for its result" in log.read_text() else None


@pytest.mark.slow
def test_two_boundary_searches_on_one_folder_find_the_uninterrupted_boundary(tmp_path, uninterrupted):
    """The first search is paused (SIGSTOP) holding its first point; the second reaches that point, waits for it
    (instead of reading it as not trained), and goes on once the first, let go on, finishes it."""
    sweep = tmp_path / "sweep"
    args = [*SEARCH, f"hydra.sweep.dir={sweep}"]
    first = _start(*args, log=tmp_path / "first.log")
    second = None
    try:
        holder = _wait_for(lambda: _first_lock(sweep), first, "the first lock")
        assert holder["pid"] == first.pid
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = _start(*args, log=tmp_path / "second.log")
            _wait_for(lambda: _waiting(tmp_path / "second.log"), second, "the second search to wait")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
        assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    finally:
        for p in (first, second):
            if p is not None:
                p.kill()
    waited = [ln for ln in (tmp_path / "second.log").read_text().splitlines() if "waiting for its result" in ln]
    assert waited and f"running elsewhere (host {holder['host']}, pid {first.pid}" in waited[0]  # the first point
    assert _boundary(sweep) == uninterrupted


@pytest.mark.slow
def test_a_killed_local_boundary_search_relaunched_finds_the_uninterrupted_boundary(tmp_path, uninterrupted):
    """SIGKILL the local launcher while a job holds a point: the job goes on (paused here, so that the relaunch
    meets it held); the relaunch waits for that point, then finishes the search."""
    sweep = tmp_path / "sweep"
    args = [*SEARCH, *LOCAL, f"hydra.sweep.dir={sweep}"]
    first = _start(*args, log=tmp_path / "first.log")
    relaunch = None
    try:
        holder = _wait_for(lambda: _first_lock(sweep), first, "a job's lock")
        os.kill(holder["pid"], signal.SIGSTOP)  # the job's task process: it keeps the point held
        try:
            first.kill()
            first.wait(timeout=60)
            relaunch = _start(*args, log=tmp_path / "relaunch.log")
            _wait_for(lambda: _waiting(tmp_path / "relaunch.log"), relaunch, "the relaunch to wait")
        finally:
            os.kill(holder["pid"], signal.SIGCONT)
        assert relaunch.wait(timeout=600) == 0, (tmp_path / "relaunch.log").read_text()[-3000:]
    finally:
        for p in (first, relaunch):
            if p is not None:
                p.kill()
    assert json.loads((holder["dir"] / "result.json").read_text())["status"] in ("completed", "diverged")
    assert _boundary(sweep) == uninterrupted


def test_a_boundary_search_told_not_to_wait_stops_with_one_line_naming_the_point_and_holder(tmp_path):
    """wait=false: a point held by a live process ends the search in one line (the point, the holder), and it is
    never read as not trained (no boundary.csv)."""
    from bench.errors import ConfigError
    from bench.runfolder import NON_RESULT_KEYS, run_id

    sweep = tmp_path / "sweep"
    first_probe = [*TINY, "optimizer.lr=1", "schedule.warmup_steps=1"]  # the middle of the first row's axis
    _lock(sweep / run_id(first_probe, NON_RESULT_KEYS), 1, 5)
    with pytest.raises(ConfigError) as stop:
        multirun(*SEARCH[1:], "hydra.sweeper.wait=false", f"hydra.sweep.dir={sweep}")
    line = str(stop.value)
    assert "optimizer.lr=1 schedule.warmup_steps=1 is running elsewhere (host" in line and "pid 1," in line
    assert "\n" not in line and not (sweep / "boundary.csv").exists()
