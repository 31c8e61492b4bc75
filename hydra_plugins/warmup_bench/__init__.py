"""Hydra instantiates launchers only from the hydra_plugins package: warmup-bench's are in bench/launcher.py."""

from bench.launcher import LocalJobs, SlurmJobs


class SlurmLauncher(SlurmJobs):
    """hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml)."""


class LocalLauncher(LocalJobs):
    """hydra/launcher=local (conf/hydra/launcher/local.yaml)."""
