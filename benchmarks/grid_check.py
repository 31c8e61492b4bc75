"""Grid check: the validating sweeper's check of a 2,000-point grid (seed=range(0,2000) x optimizer=sgd: every point
composed and checked before the first launch, bench/sweeps/sweeper.py), in seconds and ms a point, against composing
each
point with Hydra's load_sweep_config (what the check did before, on a sample of the grid). Target: at most 5 ms a
point (the ratio is ms a point / 5 ms, lower is better); the whole grid under 10 s. CPU time of this process (the
check is one thread), so that a machine shared with other work measures the check, not the others."""

from __future__ import annotations

import tempfile
import time

from omegaconf import OmegaConf

from benchmarks.common import alternate, median

POINTS = 2000
SAMPLE = 40  # points composed by Hydra alone (about 0.1 s each)


def check(points: int, hydra_only: bool) -> float:
    from bench.sweeps.preflight import check_point, composed_command

    with tempfile.TemporaryDirectory() as d:
        argv = ["-m", f"seed=range(0,{points})", "optimizer=sgd", f"hydra.sweep.dir={d}"]
        with composed_command(argv) as (cfg, sweeper):
            task = OmegaConf.to_container(cfg.hydra.overrides.task)
            loader, grid = sweeper.hydra_context.config_loader, sweeper.grid(task)
            start = time.process_time()
            if hydra_only:
                for point in grid:
                    check_point(loader.load_sweep_config(cfg, point))
            else:
                sweeper.check(grid)
            return (time.process_time() - start) / points


def run(repeats: int = 2) -> dict:
    times = alternate({"check": lambda: check(POINTS, False), "hydra": lambda: check(SAMPLE, True)}, repeats)
    ours, hydra = median(times["check"]) * 1000, median(times["hydra"]) * 1000
    return {
        "name": f"grid check ({POINTS} points: ms a point / 5 ms)",
        "ratio": ours / 5.0,
        "target": 1.0,
        "better": "lower",
        "absolute": f"{ours:.1f} CPU-ms a point, {ours * POINTS / 1000:.1f} s the grid; "
        f"composing each point with Hydra: {hydra:.0f} ms a point ({hydra / ours:.0f}x)",
        "times": times,
    }
