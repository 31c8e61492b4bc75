"""What a person watching sees: a progress bar for a run on a terminal, one line per finished run of a sweep.

The bar shows only when stderr is a terminal and the job is not under SLURM (its logs are files; tests capture
stderr), so batch jobs and tests stay quiet.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf
from tqdm import tqdm


def interactive() -> bool:
    return sys.stderr.isatty() and "SLURM_JOB_ID" not in os.environ


def progress_bar(total: int, initial: int = 0, unit: str = "step", show: bool | None = None) -> tqdm:
    """A tqdm bar over the training steps (or a sweep's points); disabled (a no-op) when nobody watches."""
    show = interactive() if show is None else show
    return tqdm(total=total, initial=initial, unit=unit, leave=False, dynamic_ncols=True, disable=not show)


def point_name(run_dir: Path) -> str:
    """The sweep point, as Hydra names it (the overrides), or the run folder's name outside a multirun."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        overrides = hydra.job.override_dirname
        own = OmegaConf.select(hydra, "runtime.output_dir", default=None)  # a pack's member: not the first's name
        ours = own is not None and Path(run_dir).resolve() == Path(str(own)).resolve()
        if overrides and ours:
            return overrides
    return Path(run_dir).name


def run_line(result: dict, run_dir: Path) -> str:
    """One line per finished run: point, status, best test accuracy, wall time."""
    acc = result.get("best_test_acc", math.nan)
    acc = math.nan if acc is None else float(acc)
    status = result.get("status", "?")
    if status == "diverged":
        status = f"diverged at step {result.get('diverged_step')}"
    elif status == "failed":
        status = f"failed ({result.get('error', '')})"
    return f"{point_name(run_dir)}: {status}, best test acc {acc:.4f}, {result.get('wall_time_s', math.nan):.1f}s"
