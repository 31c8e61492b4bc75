"""The launchers keep Hydra's launcher contract: configs found after a singleton reset, one local job per point with
its own time limit, checkpoint and requeue; a job that dies is recorded in its own folder only; stopping the
launcher stops its jobs; the per-run lock keeps two launches of a sweep from training one point twice."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton

from analysis.status import counts, sweep_status
from bench.errors import ConfigError
from bench.sweeps.launcher import time_limit_s
from bench.sweeps.lock import LOCK, RunLock
from bench.sweeps.preflight import check_command
from tests.conftest import CONF, HANG_S, ROOT, Stops, launch, state, wait_until
from tests.helpers import subprocess_env, tiny_run

TINY = tiny_run("model.width=16", drop=("steps",))
LOCAL = ["hydra/launcher=local", "hydra.launcher.cpus_per_task=1"]
# a run the test holds where it waits after its first checkpoint (tests/stops: step 100), to signal or kill it
LONG_STEPS = 400
LONG = ["model.width=16", "model.depth=2", f"steps={LONG_STEPS}", "eval_every=100", "checkpoint_every=100"]
LONG += ["batch_size=64", "device=cpu"]
# a sweep of two points: the first LONG, the second a fraction of a second that ends before any checkpoint
LONG_THEN_SHORT = [*(a for a in LONG if not a.startswith("steps=")), f"steps={LONG_STEPS},40"]


def test_launcher_and_sweeper_configs_survive_a_singleton_reset():
    """Hydra's plugin tests restore the singletons to a state saved earlier: ConfigStore without what was stored
    since, and no plugin scan yet. The next scan re-executes hydra_plugins/ modules, which store our configs again."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        compose("config", ["hydra/launcher=local"])  # plugins scanned, configs stored
    state = Singleton.get_state()
    try:
        repo = ConfigStore.instance().repo
        for group, name in [
            ("launcher", "base_local.yaml"),
            ("launcher", "base_slurm.yaml"),
            ("sweeper", "validating.yaml"),
        ]:
            del repo["hydra"][group][name]
        del repo["base_config.yaml"]
        Singleton._instances.pop(Plugins, None)
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("config", ["hydra/launcher=local", "hydra/sweeper=validating"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_ == "hydra_plugins.warmup_bench.LocalLauncher"
        assert cfg.hydra.launcher.max_parallel == 2
        assert cfg.hydra.sweeper._target_ == "hydra_plugins.warmup_bench.ValidatingSweeper"
        assert check_command(["-m", "optimizer.lr=0.1,0.2"]) == 2  # the sweeper instantiates after the rescan
    finally:
        Singleton.set_state(state)


def test_a_local_time_limit_may_be_a_fraction_of_a_minute_and_slurms_is_whole_minutes():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        local = compose("config", ["hydra/launcher=local", "hydra.launcher.timeout_min=0.75"], return_hydra_config=True)
        with pytest.raises(Exception, match="timeout_min"):  # SLURM's --time: whole minutes
            compose("config", ["hydra/launcher=slurm", "hydra.launcher.timeout_min=0.75"], return_hydra_config=True)
    assert time_limit_s(local.hydra.launcher) == 45


@pytest.mark.parametrize(
    "timeout_min, signal_delay_s",
    [(0, 0), (-1, 10), (0.01, 0), (float("inf"), 30), (float("nan"), 30), (0.5, 30), (1, 90), (1, -1), (1, 2.5)],
)
def test_a_local_time_limit_no_run_can_use_is_one_line_before_the_sweep_starts(timeout_min, signal_delay_s):
    """A limit under a second, or a pre-timeout signal not inside the limit (the run could never checkpoint): the
    launcher's setup (before Hydra sweeps anything) refuses it in one line naming the key."""
    from hydra_plugins.warmup_bench import LocalConf, LocalLauncher

    params = {k: v for k, v in vars(LocalConf()).items() if k != "_target_"}
    launcher = LocalLauncher(**params | {"timeout_min": timeout_min, "signal_delay_s": signal_delay_s})
    with pytest.raises(ConfigError, match=r"^hydra\.launcher\.(timeout_min|signal_delay_s)=") as e:
        launcher.setup(hydra_context=None, task_function=None, config=None)
    assert "\n" not in str(e.value)


def test_lock_is_atomic_and_stale_locks_are_taken_over(tmp_path):
    with RunLock(tmp_path) as first:
        assert first.held and json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
        second = RunLock(tmp_path)
        assert not second.acquire() and second.holder["pid"] == os.getpid()
    assert not (tmp_path / LOCK).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK).write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout)}))
    with RunLock(tmp_path) as taker:
        assert taker.held, "a dead holder's lock is taken over"
    (tmp_path / LOCK).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert not RunLock(tmp_path).acquire(), "another host's lock with a fresh heartbeat is respected"
    os.utime(tmp_path / LOCK, (time.time() - 3600, time.time() - 3600))
    assert RunLock(tmp_path, stale_min=10).acquire(), "a heartbeat older than stale_min is taken over"


def _start(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    env = subprocess_env(**{**(env or {}), "HYDRA_FULL_ERROR": "0"})
    out = log.open("w")
    return subprocess.Popen([sys.executable, str(ROOT / "launch.py"), *args], cwd=ROOT, env=env, stdout=out, stderr=out)


def _alive(pid: int) -> bool:
    return state(pid) not in ("Z", None)  # a zombie is dead, waiting for its parent to reap it


def _trained(text: str) -> int:
    return text.count(", best test acc")


@pytest.mark.racing
def test_a_local_job_is_requeued_as_often_as_max_num_timeout_allows_even_when_signalled_in_start_up(tmp_path):
    """bench/sweeps/localjob.py: each attempt gets the pre-timeout signal while its task is still being unpickled
    (before
    submitit installs its handler: a start-up slowed by load), and max_num_timeout=6 asks for 7 attempts (submitit's
    own controller stops after 6). The signal is delivered once handled (no job killed by it), the job is requeued
    6 times and ends with submitit's "timed-out too many times" error, never without a result. No training.
    Whatever the machine's speed: the signal comes 1 s into an attempt and the task's unpickling waits for it;
    SIGUSR2 is blocked in this process, so in the controller and its tasks (a signal mask is inherited), until the
    unpickling unblocks it (localjob's handler is in place by then); the 60 s limit only bounds a hang (an attempt
    ends as its task is requeued)."""
    import submitit

    from bench.sweeps.localjob import LocalExecutor

    class SlowStart:  # defined here: pickled by value, so the task imports nothing of the test suite
        def __init__(self):
            self.state = "a state, so that unpickling calls __setstate__"

        def __setstate__(self, state):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})
            early, deadline = sys.modules["__main__"]._early, time.time() + 600  # localjob runs as __main__
            while not early and time.time() < deadline:  # the controller's signal (1 s into the attempt)
                time.sleep(0.01)
            self.__dict__.update(state)

        def __call__(self):
            return "never reached"

        def checkpoint(self):
            return submitit.helpers.DelayedSubmission(self)

    executor = LocalExecutor(folder=tmp_path, max_num_timeout=6)
    executor.update_parameters(timeout_min=1, signal_delay_s=59)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        job = executor.submit(SlowStart())
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    with pytest.raises(submitit.core.utils.UncompletedJobError, match="timed-out too many times"):
        job.result()
    log = job.stdout() + job.stderr()
    assert log.count("Requeued job") == 6 and log.count("during start-up: delivered now") == 7, log[-3000:]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _controller(launcher: subprocess.Popen) -> int | None:
    """The pid of the launcher's job controller once it has started its task."""
    assert launcher.poll() is None, "the launcher ended"
    return next((c for c in _children(launcher.pid) if _children(c)), None)


def _running(proc: subprocess.Popen, log: Path):
    """alive() for Stops.wait: fails with the launcher's log once it has ended."""

    def alive() -> bool:
        assert proc.poll() is None, f"the launcher ended (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
        return True

    return alive


def _job_logs(sweep: Path) -> str:
    return "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))


@pytest.mark.slow
@pytest.mark.racing
def test_timeout_checkpoints_requeues_and_completes(tmp_path):
    """A 45 s limit (timeout_min=0.75: a local job's limit may be a fraction of a minute) and the pre-timeout signal
    10 s before it, mid-training: the run checkpoints at the signal, the job is requeued into the same folder (same
    job id) and the run completes from its checkpoint. Whatever the machine's speed: the job's controller counts the
    limit in its polls (24 a second), and the test lets it count (SIGCONT) only while the run waits after its first
    checkpoint (tests/stops: step 50), until the signal has reached the run; it is stopped (SIGSTOP) otherwise, from
    its first task's start to the end of the second (a task that ends meanwhile waits for it, a zombie). The one
    margin left: the test stops the controller within 10 s of its polls after the signal."""
    sweep = tmp_path / "sweep"
    run = ["model.width=16", "model.depth=2", "batch_size=64", "steps=1500", "eval_every=50", "device=cpu"]
    limits = ["hydra.launcher.timeout_min=0.75", "hydra.launcher.signal_delay_s=10"]
    args = ["-m", "seed=0", *run, "checkpoint_every=50", *LOCAL, *limits, f"hydra.sweep.dir={sweep}"]

    def ended(pid: int) -> bool:
        return state(pid) in ("Z", None)

    with Stops(tmp_path / "stops") as stops:
        proc = _start(*args, log=tmp_path / "launch.log", env=stops.env())
        controller = None
        try:
            controller = wait_until("the job's controller to start its task", lambda: _controller(proc))
            os.kill(controller, signal.SIGSTOP)
            (pid,) = stops.wait(alive=_running(proc, tmp_path / "launch.log"))
            os.kill(controller, signal.SIGCONT)
            wait_until("the pre-timeout signal", lambda: stops.signalled(pid), every=0.2)
            os.kill(controller, signal.SIGSTOP)
            stops.release()  # the run checkpoints, asks for its requeue and ends
            wait_until("the first attempt to end", lambda: ended(pid))
            os.kill(controller, signal.SIGCONT)
            (again,) = wait_until("the second attempt", lambda: [c for c in _children(controller) if c != pid])
            os.kill(controller, signal.SIGSTOP)
            wait_until("the second attempt to end", lambda: ended(again))
            os.kill(controller, signal.SIGCONT)
            proc.wait(timeout=HANG_S)
        finally:
            if controller:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(controller, signal.SIGCONT)
            proc.kill()
    (result,) = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]  # never a point without one
    assert proc.returncode == 0, f"{result}\n{(tmp_path / 'launch.log').read_text()[-3000:]}"
    assert result["status"] == "completed" and result["stop_step"] == 1500, result
    logs = _job_logs(sweep)
    saved = [int(s) for s in re.findall(r"checkpointed at step (\d+) on SIGUSR2", logs)]
    resumed = [int(s) for s in re.findall(r"resumed from \S+ at step (\d+)", logs)]
    assert saved and 0 < saved[-1] < 1500 and saved[-1] in resumed, logs[-3000:]
    assert "Requeued job" in logs
    assert len(list(sweep.glob(".submitit/*/*_submitted.pkl"))) == 1, "requeued as the same job"


@pytest.mark.slow
@pytest.mark.racing
def test_a_killed_job_is_recorded_in_its_own_folder_only(tmp_path):
    """The long point is killed (SIGKILL) where it waits, after its first checkpoint (tests/stops); the short
    one ends before any checkpoint."""
    sweep = tmp_path / "sweep"
    args = ["-m", *LONG_THEN_SHORT, *LOCAL, "hydra.launcher.max_parallel=2", f"hydra.sweep.dir={sweep}"]
    with Stops(tmp_path / "stops") as stops:
        proc = _start(*args, log=tmp_path / "launch.log", env=stops.env())
        try:
            ((victim, folder),) = stops.wait(alive=_running(proc, tmp_path / "launch.log")).items()
            os.kill(victim, signal.SIGKILL)
            assert proc.wait(timeout=HANG_S) != 0, "a dead point makes the multirun exit non-zero"
        finally:
            proc.kill()
    status = sweep_status(sweep)
    assert counts(status)["failed"] == 1 and counts(status)["completed"] == 1, status
    failed = json.loads((folder / "result.json").read_text())
    assert failed["status"] == "failed" and failed["error_type"] == "job_died"
    assert f"steps={LONG_STEPS}" in folder.name
    ids = {p.parent.name for p in sweep.glob(".submitit/*/*_submitted.pkl")}
    assert len(ids) == 2, "one job, one job id per point"


@pytest.mark.slow
@pytest.mark.racing
def test_stopping_the_launcher_stops_its_jobs(tmp_path):
    """SIGTERM to the launcher while both points' runs are held after their first checkpoint (tests/stops)."""
    sweep = tmp_path / "sweep"
    args = ["-m", "optimizer.lr=0.25,0.5", *LONG, *LOCAL, "hydra.launcher.max_parallel=2", f"hydra.sweep.dir={sweep}"]
    with Stops(tmp_path / "stops") as stops:
        proc = _start(*args, log=tmp_path / "launch.log", env=stops.env())
        try:
            pids = list(stops.wait(2, alive=_running(proc, tmp_path / "launch.log")))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=HANG_S) != 0
        finally:
            proc.kill()
        wait_until("the jobs to end", lambda: not any(_alive(p) for p in pids))  # no job outlives its launcher
    assert "cancelling 2 running job(s)" in (tmp_path / "launch.log").read_text()


@pytest.mark.slow
@pytest.mark.racing
def test_two_launches_of_a_sweep_never_train_a_point_twice(tmp_path):
    """The first launch holds point 1: it stops after the point's first checkpoint and waits (tests/stops), holding the
    point's lock, whatever the machine's speed, while the second launch of the same sweep runs; the second finds it
    locked and reports it running elsewhere, trains point 2; the first, let go on, completes point 1, then
    skips point 2. Both are basic-launcher launches: the lock is taken by the run (bench.run), whatever launched it,
    and a launch that trains in its own process needs no job processes (tests/test_sweeps.py runs the local launcher's
    jobs). Both points are small runs; point 2 ends before any checkpoint."""
    sweep = tmp_path / "sweep"
    grid = ["-m", *TINY, "steps=200,40", "checkpoint_every=50", f"hydra.sweep.dir={sweep}"]
    with Stops(tmp_path / "stops") as stops:
        first = _start(*grid, log=tmp_path / "first.log", env=stops.env())
        try:
            ((holder, folder),) = stops.wait(alive=_running(first, tmp_path / "first.log")).items()
            assert holder == first.pid and "steps=200" in folder.name
            assert json.loads((folder / LOCK).read_text())["pid"] == first.pid
            second = launch(*grid)
            stops.release()
            assert first.wait(timeout=HANG_S) == 0, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            first.kill()
    assert second.returncode == 1 and "incomplete: 1 of 2 points skipped" in second.stderr, second.stderr[-3000:]
    second_log, first_log = second.stdout + second.stderr, (tmp_path / "first.log").read_text()
    assert "running elsewhere" in second_log
    assert _trained(second_log) + _trained(first_log) == 2, "each point trained once"
    assert _trained(first_log) == 1 and "already completed (result.json), skipped" in first_log
    assert counts(sweep_status(sweep))["completed"] == 2
