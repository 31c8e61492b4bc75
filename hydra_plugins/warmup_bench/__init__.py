"""warmup-bench's Hydra plugins. Hydra finds plugins only in the hydra_plugins package, and re-executes these modules
each time it scans for plugins (after a singleton reset too), so every ConfigStore entry of the app is stored here:
the config schemas (bench.config), the launchers hydra/launcher=local|slurm (bench/sweeps/launcher.py, extended by
conf/hydra/launcher/*.yaml) and the sweepers hydra/sweeper=validating|boundary (bench/sweeps/sweeper.py,
bench/sweeps/boundary.py),
each ending a sweep with failed points, or a stopped one, with its one-line summary (bench.sweeps.sweeper.Summarized).
The Preflight callback checks a single run before Hydra makes its folder (a sweep's points: the sweeper)."""

from dataclasses import dataclass, field
from typing import Any, Optional

import hydra.core.utils
from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

import bench.config
from bench.runfolder.store import save_config
from bench.sweeps.boundary import BoundarySweeper as _BoundarySweeper
from bench.sweeps.launcher import LocalJobs, SlurmJobs
from bench.sweeps.sweeper import Summarized
from bench.sweeps.sweeper import ValidatingSweeper as _ValidatingSweeper

# Hydra's run_job writes a run's .hydra/*.yaml with open("w"): a full disk there is a traceback and an empty
# config.yaml. bench.runfolder.store.save_config writes them atomically and says so in one line (this module is
# imported in every process that runs a job: Hydra's plugin scan, and the unpickling of a launcher in a submitit job)
hydra.core.utils._save_config = save_config


class SlurmLauncher(SlurmJobs):
    """hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml)."""


class LocalLauncher(LocalJobs):
    """hydra/launcher=local (conf/hydra/launcher/local.yaml)."""


class ValidatingSweeper(Summarized, _ValidatingSweeper):
    """hydra/sweeper=validating (this app's default, conf/config.yaml)."""


class BoundarySweeper(Summarized, _BoundarySweeper):
    """hydra/sweeper=boundary: eta_max per row of the grid by bisection (bench/sweeps/boundary.py)."""


class Preflight(Callback):
    """hydra.callbacks.preflight: a single run is checked (bench.sweeps.preflight.check_point) before Hydra makes its
    folder.
    Hydra turns a callback's exceptions into warnings, so a bad run ends the process here: one line, exit status 1."""

    def on_run_start(self, config, **kwargs: Any) -> None:
        from bench.errors import ConfigError
        from bench.sweeps.preflight import check_point

        try:
            check_point(config)
        except ConfigError as e:
            raise SystemExit(f"error: {e}") from None


class Study(Callback):
    """hydra.callbacks.study: an optimizing sweeper's study (Optuna...) is refused in one line before any trial when it
    would land in a preset's folder (as a changed grid is by the validating sweeper) or optimize its objective the
    wrong way (a diverged run's penalty would win), and ends with one line counting its sweep folder's trials by
    status, so that diverged trials (which returned the penalty) are not taken for results. The grid sweepers report
    through the launchers and `python -m analysis status`."""

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        from bench.cli import optimizing
        from bench.config import OBJECTIVES
        from bench.sweeps.sweeper import changed_preset

        if not optimizing(config.hydra.sweeper):
            return
        objective, direction = config.get("objective"), config.hydra.sweeper.get("direction")
        direction = getattr(direction, "name", direction)  # Optuna's config holds an enum (Direction.minimize)
        best = "maximize" if OBJECTIVES.get(objective) == 0.0 else "minimize"  # the penalty is the worst value
        if isinstance(direction, str) and direction.lower() != best:
            problem = f"hydra.sweeper.direction={direction}: objective={objective} is {best}d "
            problem += f"(hydra.sweeper.direction={best})"
        else:
            problem = changed_preset(config, study=True)
        if problem:
            raise SystemExit(f"error: {problem}")  # Hydra turns a callback's exceptions into warnings

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        import logging
        from pathlib import Path

        from bench.cli import optimizing
        from bench.config import OBJECTIVES

        if not optimizing(config.hydra.sweeper):
            return
        from analysis.status import folder_state, run_folders

        sweep = Path(str(config.hydra.sweep.dir))
        states = [folder_state(d)["status"] for d in run_folders(sweep)] if sweep.is_dir() else []
        n = {s: states.count(s) for s in ("completed", "diverged", "failed")}
        objective = config.get("objective", "best_test_acc")
        logging.getLogger("bench.study").info(
            "study: %d trials in %s: %s (each diverged or failed trial returned %s=%s, the penalty)",
            sum(n.values()),
            sweep,
            ", ".join(f"{v} {k}" for k, v in n.items()),
            objective,
            OBJECTIVES.get(objective),
        )


@dataclass
class SlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.warmup_bench.SlurmLauncher"
    ensemble: int = 1  # > 1: up to this many compatible points trained as one pack per job (bench/sweeps/packs.py)


@dataclass
class LocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.warmup_bench.LocalLauncher"
    timeout_min: float = 60  # time limit of one attempt; minutes, fractions allowed (SLURM's --time: whole minutes)
    max_parallel: int = 2  # runs at the same time on this machine
    signal_delay_s: int = 30  # the pre-timeout signal (SIGUSR2) this long before timeout_min: checkpoint, requeue
    max_num_timeout: int = 3  # requeues after a timeout
    ensemble: int = 1  # > 1: up to this many compatible points trained as one pack per job (bench/sweeps/packs.py)


@dataclass
class ValidatingSweeperConf:
    _target_: str = "hydra_plugins.warmup_bench.ValidatingSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045  (OmegaConf reads the annotation)
    params: Optional[dict[str, str]] = field(default=None)  # noqa: UP045


@dataclass
class BoundarySweeperConf(ValidatingSweeperConf):
    _target_: str = "hydra_plugins.warmup_bench.BoundarySweeper"
    eta: str = "optimizer.lr"  # the axis searched (sorted numerically)
    warmup: str = "schedule.warmup_steps"  # the axis along which the boundary is monotone (monotone=true)
    seed: str = "seed"  # a cell trains when every seed does
    monotone: bool = True  # start each row's bracket from its T_wrm neighbours' results (checked)
    seed_by_seed: bool = True  # a cell's seeds one per round, stopping at the first that fails (fewer runs, more
    # rounds); false: all its seeds in one round
    wait: bool = True  # a point held by another launch: wait for its result (false: stop, one line naming it)
    poll_s: float = 5.0  # how often a point held elsewhere is looked at (its result.json and lock)


def register() -> None:
    bench.config.register()  # base_config and the groups' schemas
    cs = ConfigStore.instance()
    cs.store(group="hydra/launcher", name="base_slurm", node=SlurmConf)
    cs.store(group="hydra/launcher", name="base_local", node=LocalConf)
    cs.store(group="hydra/sweeper", name="validating", node=ValidatingSweeperConf)
    cs.store(group="hydra/sweeper", name="boundary", node=BoundarySweeperConf)


register()
