"""Shared fixtures: compose configs as launch.py would, and run the harness in a temporary folder."""

from __future__ import annotations

import os

# one thread per test process (and per run it starts): small and fast, and a run trained here is bit-identical to
# the same run trained in a job that sets torch's threads to cpus_per_task=1 (float sums depend on the thread count)
os.environ["OMP_NUM_THREADS"] = "1"

import contextlib  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import bench.config  # noqa: E402, F401  (registers the structured configs with Hydra)
from tests.helpers import ROOT, TINY, subprocess_env  # noqa: E402

torch.set_num_threads(1)

CONF = ROOT / "conf"


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def launch(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """python launch.py ARGS in a subprocess, as a user would type it."""
    env = subprocess_env()
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _in_process(method: str, overrides: list[str]):
    """Hydra's run or multirun of launch.py's task function, with the app's callbacks, sweeper and launcher, in this
    process (no interpreter start). What would end the command (a one-line SystemExit) is raised. This process's
    root logger and HydraConfig are left as they were (Hydra's basic launcher configures job logging here)."""
    import logging

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from bench import cli as app

    root, before = logging.getLogger(), HydraConfig.instance().cfg
    handlers, level = root.handlers[:], root.level
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="launch"):
            hydra = GlobalHydra.instance().hydra
            return getattr(hydra, method)("config", app.main.__wrapped__, overrides, with_log_configuration=False)
    finally:
        for h in set(root.handlers) - set(handlers):
            h.close()
        root.handlers[:], root.level = handlers, level
        HydraConfig.instance().cfg = before


def run_in_process(*overrides: str):
    """`python launch.py OVERRIDES` in this process: Preflight, then the run; its JobReturn (a failed run raises)."""
    return _in_process("run", list(overrides))


def multirun(*overrides: str) -> list:
    """`python launch.py -m OVERRIDES` in this process (hydra.mode=MULTIRUN, as -m sets it): every point checked,
    then launched; the JobReturns the sweeper received."""
    return [r for batch in _in_process("multirun", [*overrides, "hydra.mode=MULTIRUN"]) or [] for r in batch]


HANG_S = 600  # a deadline that only bounds a hang: a test that waits on a process never needs it to succeed


class Stops:
    """Processes started with env() stop right after their first checkpoint and wait there (tests/stops/
    sitecustomize.py) until the test lets them go on: the test signals or kills a run at a point it controls,
    whatever the machine's speed or load."""

    def __init__(self, folder: Path):
        self.folder, self.released = folder, False
        folder.mkdir(parents=True)

    def env(self) -> dict:
        """The variables for a process whose runs (its jobs' runs too) stop after their first checkpoint."""
        path = os.pathsep.join([str(ROOT / "tests" / "stops"), str(ROOT)])
        return {"PYTHONPATH": path, "WARMUP_BENCH_TEST_STOPS": str(self.folder)}

    def wait(self, n: int = 1, alive=lambda: True) -> dict[int, Path]:
        """The processes waiting now (pid -> run folder), once there are n; `alive()` false (the launcher ended)
        fails at once."""

        def waiting() -> dict[int, Path] | None:
            assert alive(), "the launcher ended before its runs stopped after a checkpoint"
            now = self._waiting()
            return now if len(now) >= n else None

        return wait_until(f"{n} run(s) to stop after a checkpoint", waiting)

    def signalled(self, pid: int) -> bool:
        """A stop signal (SIGUSR2, SIGTERM) has reached that waiting process: pending, or noted by the run."""
        reached = (self.folder / f"{pid}.signalled").exists()
        return reached or any(signal_pending(pid, s) for s in (signal.SIGUSR2, signal.SIGTERM))

    def go(self, pid: int) -> None:
        """That process goes on."""
        (self.folder / str(pid)).unlink()

    def release(self) -> None:
        """Every process waiting goes on, and none stops any more."""
        self.folder.rename(self.folder.with_name(self.folder.name + ".off"))
        self.released = True

    def __enter__(self) -> Stops:
        return self

    def __exit__(self, *exc) -> None:
        """A process still waiting (a test that failed half-way) is killed: none is left behind."""
        for pid in [] if self.released else self._waiting():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _waiting(self) -> dict[int, Path]:
        files = [f for f in self.folder.iterdir() if f.name.isdigit()]
        return {int(f.name): Path(f.read_text()) for f in files if state(int(f.name)) not in ("Z", None)}


def state(pid: int) -> str | None:
    """A process's state letter (R, S, T: stopped, Z: zombie), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def signal_pending(pid: int, signum: int) -> bool:
    """Whether signum waits to be delivered to process pid (Linux: /proc/PID/status, its pending-signal masks)."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask >> (signum - 1) & 1 for mask in masks)


def wait_until(what: str, check, every: float = 0.05):
    """check()'s first true value; HANG_S only bounds a hang."""
    deadline = time.time() + HANG_S
    while not (value := check()):
        assert time.time() < deadline, f"waited {HANG_S} s for {what}"
        time.sleep(every)
    return value


# Slowest first (measured; a prefix of a test id): under pytest-xdist (`make test`: -n JOBS) they start at once and
# overlap with the many short tests, instead of ending the run alone. Tests that wait (on subprocesses, SLURM, time
# limits) leave the two cores to the others, hence more workers than cores.
SLOWEST = [
    "tests/test_slurm.py",
    "tests/test_slurm_summary.py",
    "tests/test_walkthrough.py::test_readme_slurm_walkthrough",
    "tests/test_walkthrough.py::test_readme_walkthrough",
    "tests/test_launchers.py::test_timeout_checkpoints_requeues_and_completes",
    "tests/test_launchers.py::test_a_killed_job_is_recorded_in_its_own_folder_only",
    "tests/test_launch_packing.py::test_a_packed_sweep_writes_the_unpacked_sweeps_folders_in_fewer_jobs",
    "tests/test_boundary.py::test_real_fig3_like_boundary_search_matches_the_full_grid",
    "tests/test_resume.py::test_ctrl_c_then_the_same_command_resumes",
    "tests/test_launch_packing.py::test_a_signalled_pack_checkpoints_is_requeued_and_resumes",
    "tests/test_launchers.py::test_two_launches_of_a_sweep_never_train_a_point_twice",
    "tests/test_trust_locks.py::test_a_killed_local_boundary_search_relaunched",
    "tests/test_trust_locks.py::test_two_boundary_searches_on_one_folder",
    "tests/test_launchers.py::test_stopping_the_launcher_stops_its_jobs",
    "tests/test_packaging.py::test_installed",
    "tests/test_cli.py::test_printing_a_config_needs_no_data",
    "tests/test_sharpness.py::test_fewer_hvps_than_power_iteration",
    "tests/test_leaderboard.py::test_quick_",
]


# Tests that share a module-level cache (each demo point, preset or command line composed once) run in one worker,
# but those ALONE (the expensive ones, spread over the workers)
TOGETHER = [
    "tests/test_boundary.py::test_",
    "tests/test_experiments.py::test_",
    "tests/test_ensemble.py::test_",
    "tests/test_leaderboard.py::test_quick_",  # the QUICK leaderboard, a module fixture: paid once
]
ALONE = [
    "tests/test_boundary.py::test_real_",
    "tests/test_experiments.py::test_preset_trains",
    "tests/test_experiments.py::test_grid_ends",
]


def _names_slurm(nodeid: str) -> bool:
    return "slurm" in nodeid.split("[")[0]  # the file or the test's name, not its parameters


def pytest_addoption(parser):
    parser.addoption("--rounds", type=int, default=1, help="run each test marked racing this many times (test-stress)")


def pytest_generate_tests(metafunc):
    """--rounds N: a racing test N times (ids ...[round-K]), spread over the workers like any other tests."""
    rounds = metafunc.config.getoption("rounds")
    if rounds > 1 and metafunc.definition.get_closest_marker("racing"):
        metafunc.fixturenames.append("stress_round")
        metafunc.parametrize("stress_round", range(rounds), ids=lambda k: f"round-{k}")


def pytest_collection_modifyitems(config, items):
    """A test marked `slurm` names slurm in its id (its file or its name): pytest-xdist's scheduler below sees test
    ids only. Then the slowest tests first, the others in their usual order."""
    for item in items:
        if item.get_closest_marker("slurm") and not _names_slurm(item.nodeid):
            raise pytest.UsageError(f"{item.nodeid} is marked slurm: its file or test name must say slurm")

    def rank(item) -> int:
        return next((i for i, prefix in enumerate(SLOWEST) if item.nodeid.startswith(prefix)), len(SLOWEST))

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config, log):
    """The machine has one local SLURM cluster: the tests whose id names slurm run in one worker, one after the other
    (a module's fixture starts and stops the cluster there); so do those of each TOGETHER prefix (but ALONE); every
    other test is scheduled alone, slowest first.
    (xdist's own `--dist loadgroup` does not group under pytest 9.2: it sets an attribute 9.2 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SlurmInOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if _names_slurm(nodeid):
                return "slurm"
            if not nodeid.startswith(tuple(ALONE)):
                return next((prefix for prefix in TOGETHER if nodeid.startswith(prefix)), nodeid)
            return nodeid

    return SlurmInOneWorker(config, log)


@pytest.fixture
def tiny():
    """Overrides for a run that takes well under a second."""
    return list(TINY)
