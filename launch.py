"""Entry point: python launch.py [overrides], or python launch.py -m [sweep overrides] (see README).

Every run is checked before anything trains: a sweep's points by the validating sweeper, a single run by the
Preflight callback (hydra_plugins/warmup_bench). A bad config is one line and a non-zero exit status."""

import os
import sys

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import bench
from bench.checkpoint import Terminated
from bench.config import ConfigError


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """One run; returns its objective (a result.json value) for Hydra's sweepers, NaN if it did not complete."""
    from bench.preflight import one_line_failure

    try:
        result = bench.run(cfg)
    except Exception as e:
        if (line := one_line_failure(e)) is None:
            raise
        sys.exit(f"error: {line}")  # a single run: bad input or the machine's failure, one line (a sweep goes on)
    return bench.objective(cfg, result)


if __name__ == "__main__":
    # Hydra hands errors on to us (instead of printing them in several lines): a config error is then one line
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except (ConfigError, HydraException, OmegaConfBaseException) as e:
        from bench.preflight import compose_error

        sys.exit(f"error: {compose_error(e)}")
    except Terminated as e:  # SIGTERM: checkpointed first
        print(f"stopped ({e})", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt as e:  # Ctrl-C (a run resumes from its last checkpoint), or the launcher stopped
        sys.exit(
            f"stopped: {e}" if str(e) else "interrupted (Ctrl-C): the same command resumes from the last checkpoint"
        )
