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


@pytest.fixture
def tiny():
    """Overrides for a run that takes well under a second."""
    return ["model.width=32", "model.depth=2", "steps=12", "eval_every=4", "batch_size=64", "device=cpu"]
