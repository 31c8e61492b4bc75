"""Shared fixtures: compose configs as launch.py would, and run the harness in a temporary folder."""

from __future__ import annotations

import os

# one thread per test process (and per run it starts): small and fast, and a run trained here is bit-identical to
# the same run trained in a job that sets torch's threads to cpus_per_task=1 (float sums depend on the thread count)
os.environ["OMP_NUM_THREADS"] = "1"

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import bench.config  # noqa: E402, F401  (registers the structured configs with Hydra)

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def launch(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """python launch.py ARGS in a subprocess, as a user would type it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
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
]


# Tests that share a module-level cache (each demo point, preset or command line composed once) run in one worker,
# but those ALONE (the expensive ones, spread over the workers)
TOGETHER = ["tests/test_boundary.py::test_", "tests/test_experiments.py::test_", "tests/test_ensemble.py::test_"]
ALONE = [
    "tests/test_boundary.py::test_real_",
    "tests/test_experiments.py::test_preset_trains",
    "tests/test_experiments.py::test_grid_ends",
]


def _names_slurm(nodeid: str) -> bool:
    return "slurm" in nodeid.split("[")[0]  # the file or the test's name, not its parameters


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
    return ["model.width=32", "model.depth=2", "steps=12", "eval_every=4", "batch_size=64", "device=cpu"]
