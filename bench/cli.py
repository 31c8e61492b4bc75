"""The command line: `warmup-bench [overrides]`, or `warmup-bench -m [sweep overrides]` (the console script of an
installed package); `python launch.py ...` in a checkout is the same program (see README).

Every run is checked before anything trains: a sweep's points by the validating sweeper, a single run by the
Preflight callback (hydra_plugins/warmup_bench). A bad config is one line and a non-zero exit status.

The job is named `launch` (conf/config.yaml hydra.job.name: its log file is launch.log); the configs are read from
bench.sweeps.preflight.CONF_DIR, which is conf/ in a checkout and its copy inside an installed package."""

import logging
import os
import sys

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import bench
from bench.config import one_line
from bench.errors import ConfigError
from bench.runfolder import StorageError
from bench.signals import Terminated
from bench.sweeps.lock import RUNNING_ELSEWHERE, Incomplete, elsewhere_line
from bench.sweeps.preflight import CONF_DIR
from bench.sweeps.summary import SweepEnded

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    """One run; returns its objective (a result.json value) for Hydra's sweepers, or the objective's penalty if it did
    not complete (bench.objective)."""
    from bench.sweeps.preflight import one_line_failure

    global started
    started = True
    try:
        result = bench.run(cfg)
    except Exception as e:
        if (line := one_line_failure(e)) is not None:
            sys.exit(f"error: {line}")  # a single run: bad input or the machine's failure, one line (a sweep goes on)
        if not optimizing_sweep():
            raise
        # an optimizing sweeper's trial: recorded failed in its folder (bench.train.run), the study goes on
        log.error("failed (the objective's penalty goes to the sweeper): %s", one_line(e))
        result = {"status": "failed"}
    if result.get("status") == RUNNING_ELSEWHERE and not _multirun():  # a sweep counts it (bench.sweeps.sweeper)
        sys.exit(f"error: {elsewhere_line(result)}")
    return bench.objective(cfg, result)


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


started = False  # the task function was called: an interrupted run has a folder (and maybe a checkpoint)

# the grid sweepers (the app's and Hydra's basic one): a failed point ends the sweep with an error, after the others
GRID_SWEEPERS = ("hydra_plugins.warmup_bench.", "hydra._internal.core_plugins.basic_sweeper.")


def optimizing_sweep() -> bool:
    """A multirun driven by a sweeper that reads the objective (Optuna, Nevergrad, Ax...), not a grid sweeper."""
    if not _multirun():
        return False
    from hydra.core.hydra_config import HydraConfig

    return optimizing(HydraConfig.get().sweeper)


def optimizing(sweeper) -> bool:
    """hydra.sweeper (a config node) is a sweeper that reads the objective, not a grid sweeper."""
    return not str(sweeper.get("_target_", "")).startswith(GRID_SWEEPERS)


# presets sit in config.yaml's defaults list, so Hydra refuses `+sweep=NAME`; commands written before (`+sweep=demo`,
# `+experiment=NAME`) keep working: the command line reads them as `sweep=NAME`, `experiment=NAME`
PRESET_PLUS = ("+experiment=", "+sweep=")


def plain_presets(argv: list[str]) -> list[str]:
    return [a[1:] if a.startswith(PRESET_PLUS) else a for a in argv]


def cli() -> None:
    """The `warmup-bench` console script and `python launch.py`: main() with one-line errors and exit statuses."""
    global started
    started = False
    sys.argv = plain_presets(sys.argv)
    # Hydra hands errors on to us (instead of printing them in several lines): a config error is then one line
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except (ConfigError, HydraException, OmegaConfBaseException) as e:
        from bench.sweeps.preflight import compose_error

        sys.exit(f"error: {compose_error(e)}")
    except Incomplete as e:  # points skipped as running elsewhere (counted on the console)
        sys.exit(f"incomplete: {e}")
    except SweepEnded as e:  # a sweep with failed points, or stopped: its summary
        sys.exit(str(e))
    except StorageError as e:  # the machine refused Hydra's own files (.hydra/config.yaml) before the run started
        sys.exit(f"error: {e}")
    except Terminated as e:  # SIGTERM: checkpointed first
        print(f"stopped ({e})", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt as e:  # Ctrl-C (a run resumes from its last checkpoint), or the launcher stopped
        if str(e):
            sys.exit(f"stopped: {e}")
        if not started:
            sys.exit("interrupted (Ctrl-C) before the run started: nothing to resume")
        sys.exit("interrupted (Ctrl-C): the same command resumes from the last checkpoint")


if __name__ == "__main__":
    cli()
