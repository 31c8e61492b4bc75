"""Shared fixtures: compose configs as launch.py would, and run the harness in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import bench.config  # noqa: F401  (registers the structured configs with Hydra)

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"

# small and fast everywhere: one thread per test process, no accidental GPU
os.environ.setdefault("OMP_NUM_THREADS", "1")


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
