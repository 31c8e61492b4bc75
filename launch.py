"""Entry point: python launch.py [overrides], or python launch.py -m [sweep overrides] (see README)."""

import sys

import hydra
from omegaconf import DictConfig

import bench
from bench.checkpoint import Terminated
from bench.cli import one_line_failure, preflight
from bench.config import ConfigError


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        bench.run(cfg)
    except Exception as e:
        if (line := one_line_failure(e)) is None:
            raise
        sys.exit(f"error: {line}")  # a single run: bad input or the machine's failure, one line (a sweep goes on)


if __name__ == "__main__":
    try:
        preflight(sys.argv[1:])  # every grid point is checked before anything trains
        main()
    except ConfigError as e:
        sys.exit(f"error: {e}")
    except Terminated as e:  # SIGTERM: checkpointed first
        print(f"stopped ({e})", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        sys.exit("interrupted (Ctrl-C): the same command resumes from the last checkpoint")
