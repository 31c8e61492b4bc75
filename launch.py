"""Entry point: python launch.py [overrides], or python launch.py -m [sweep overrides] (see README)."""

import sys

import hydra
from omegaconf import DictConfig

import bench
from bench.cli import preflight
from bench.config import ConfigError


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    bench.run(cfg)


if __name__ == "__main__":
    try:
        preflight(sys.argv[1:])  # every grid point is checked before anything trains
    except ConfigError as e:
        sys.exit(f"error: {e}")
    main()
