"""Boundary search (hydra/sweeper=boundary): eta_max for every row of a grid with a fraction of its runs.

Given the grid of a full sweep (an eta_trgt axis and any other swept keys), a row is one combination of the keys
other than eta_trgt and the seed. For each row the search finds the largest eta_trgt at which every seed trains
(bench.runfolder.trainable, the rule of the phase diagram) by bisection over the sorted eta axis, assuming that a
row trains below its boundary and not above. It goes in rounds: each round is one launcher call holding the next
runs of every unfinished row, so that a SLURM array runs them together. Seed by seed (seed_by_seed=true): a cell's
seeds run one per round, the likeliest to fail first, and the first that fails decides the cell (the rule is "every
seed trains"), so the others are never run; seed_by_seed=false runs them together (fewer rounds, more runs).

Monotonicity in T_wrm (monotone=true): a longer warmup trains wherever a shorter one does and a shorter one fails
wherever a longer one fails, so each row's bracket starts from what its neighbours in T_wrm (same other keys) have
measured. Checked: the final bracket of every row (eta_max and the next eta) is measured in the row itself, and a
row whose own result contradicts its neighbours is searched again on its own measurements only.

A point held by another launch (its run.lock, bench/sweeps/lock.py) is never read as a result: the search waits for its
result.json, polling every poll_s while the holder is alive by the lock's heartbeat rule, and launches it again if
the holder ended without a result (wait=false: stops instead, with one line naming the point and the holder). So two
searches on one folder, or a relaunch after a killed search whose jobs still run, find the same boundary.

Every run is an ordinary run folder (reused when it already holds a finished result), and the sweep folder gets
boundary.csv: the row's keys, eta_max (empty when no eta trains), the runs it took, lower_bound (eta_max is the top
of the grid: the true boundary may be higher) and monotone_checked (false: contradicted, searched on its own).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import outcome
from bench.errors import ConfigError
from bench.sweeps.lock import RUNNING_ELSEWHERE, RunLock, describe
from bench.runfolder import FINISHED, STATUSES, atomic_write_text, column
from bench.sweeps.sweeper import ValidatingSweeper, point_name

log = logging.getLogger(__name__)

BOUNDARY_CSV = "boundary.csv"
RELAUNCHES = 3  # launches of a point whose holder keeps ending without a result, before the search stops


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


@dataclass
class Row:
    keys: tuple[str, ...]  # the row's overrides (no eta, no seed)
    etas: list[float]  # sorted eta axis
    points: dict[int, list[list[str]]]  # eta index -> the points of its seeds
    warmup: float | None = None
    seeds: dict[tuple[int, int], bool] = field(default_factory=dict)  # (eta index, seed index) -> that seed trains
    measured: dict[int, bool] = field(default_factory=dict)  # eta index -> every seed trains (decided cells only)
    runs: int = 0
    own_only: bool = False  # monotonicity contradicted: the row's own measurements only

    def record(self, i: int, j: int, ok: bool) -> None:
        """Seed j's result at eta index i: the cell fails with its first failing seed, trains when all its seeds do."""
        self.seeds[i, j] = ok
        self.runs += 1
        if not ok:
            self.measured[i] = False
        elif all(self.seeds.get((i, k)) for k in range(len(self.points[i]))):
            self.measured[i] = True

    def pending(self, i: int) -> list[int]:
        """The seeds not yet run at eta index i, the likeliest to fail first: those that failed at the lowest eta of
        this row (a seed that fails ends the cell, so the rest are not run)."""
        lowest_fail: dict[int, int] = {}  # seed -> the lowest eta index at which it failed
        for (k, j), ok in sorted(self.seeds.items()):
            if not ok:
                lowest_fail.setdefault(j, k)
        todo = [j for j in range(len(self.points[i])) if (i, j) not in self.seeds]
        return sorted(todo, key=lambda j: (lowest_fail.get(j, len(self.etas)), j))

    def facts(self, implied: dict[int, bool]) -> dict[int, bool]:
        return self.measured if self.own_only else {**implied, **self.measured}

    def bracket(self, implied: dict[int, bool]) -> tuple[int, int]:
        """(lo, hi): the largest eta index known to train (-1: none) and the smallest above it known not to."""
        facts = self.facts(implied)
        lo = max((i for i, ok in facts.items() if ok), default=-1)
        hi = min((i for i, ok in facts.items() if not ok and i > lo), default=len(self.etas))
        return lo, hi

    def next_probe(self, implied: dict[int, bool]) -> int | None:
        started = [i for i, _ in self.seeds if i not in self.measured]
        if started:  # a cell some of whose seeds ran is finished first: no cell is left with a partial verdict
            return started[0]
        lo, hi = self.bracket(implied)
        if hi - lo > 1:
            return (lo + hi) // 2
        for end in (lo, hi):  # the bracket's ends must be measured in the row itself
            if 0 <= end < len(self.etas) and end not in self.measured:
                return end
        return None

    def contradicts(self, implied: dict[int, bool]) -> bool:
        return any(i in implied and implied[i] != ok for i, ok in self.measured.items())


def trains(results: Sequence[dict]) -> bool:
    """Every seed trains, by the phase diagram's rule (bench.runfolder.trainable)."""
    import pandas as pd

    from bench.runfolder import trainable

    runs = pd.DataFrame([{"status": None, "final_test_acc": math.nan, "num_classes": math.nan, **r} for r in results])
    return bool(len(runs)) and bool(trainable(runs).all())


class BoundarySweeper(ValidatingSweeper):
    def __init__(
        self,
        max_batch_size=None,
        params=None,
        eta: str = "optimizer.lr",
        warmup: str = "schedule.warmup_steps",
        seed: str = "seed",
        monotone: bool = True,
        seed_by_seed: bool = True,
        wait: bool = True,
        poll_s: float = 5.0,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.eta, self.warmup, self.seed, self.monotone = eta, warmup, seed, monotone
        self.seed_by_seed, self.wait, self.poll_s = seed_by_seed, wait, poll_s

    def rows(self, grid: Sequence[Sequence[str]]) -> list[Row]:
        by_row: dict[tuple[str, ...], dict[float, list[list[str]]]] = {}
        for point in grid:
            keys = tuple(o for o in point if _split(o)[0] not in (self.eta, self.seed))
            etas = [float(_split(o)[1]) for o in point if _split(o)[0] == self.eta]
            if len(etas) != 1:
                raise ConfigError(
                    f"hydra/sweeper=boundary: sweep {self.eta}, the axis searched (e.g. {self.eta}=0.1,1)"
                )
            by_row.setdefault(keys, {}).setdefault(etas[0], []).append(list(point))
        rows = []
        for keys, points in by_row.items():
            etas = sorted(points)
            warmup = [float(_split(o)[1]) for o in keys if _split(o)[0] == self.warmup]
            rows.append(Row(keys, etas, {i: points[e] for i, e in enumerate(etas)}, warmup[0] if warmup else None))
        return rows

    def implied(self, row: Row, rows: list[Row]) -> dict[int, bool]:
        """What the row's T_wrm neighbours (same other keys) measured: trains at a shorter warmup -> trains here;
        fails at a longer one -> fails here."""
        if not self.monotone or row.warmup is None:
            return {}
        other = [o for o in row.keys if _split(o)[0] != self.warmup]
        out: dict[int, bool] = {}
        for r in rows:
            if r is row or r.warmup is None or r.etas != row.etas:
                continue
            if [o for o in r.keys if _split(o)[0] != self.warmup] != other:
                continue
            for i, ok in r.measured.items():
                if (ok and r.warmup < row.warmup) or (not ok and r.warmup > row.warmup):
                    out[i] = ok
        return out

    def sweep(self, arguments: list[str]):
        assert self.launcher is not None and self.config is not None
        grid = self.grid(arguments)
        rows = self.rows(grid)
        self.check(grid)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        failed, returns, job_idx, round_no = 0, [], 0, 0
        while probes := [(row, *step) for row in rows if (step := self.next_runs(row, rows))]:
            round_no += 1
            batch = [row.points[i][j] for row, i, seeds in probes for j in seeds]
            log.info("boundary round %d: %d rows, %d runs", round_no, len(probes), len(batch))
            for results in self.launch_round(batch, job_idx, grid):
                job_idx += len(results)
                returns.append(results)
                failed += sum(1 for r in results if r.status.name == "FAILED")
            for row, i, seeds in probes:
                for j in seeds:
                    row.record(i, j, trains([self.result(row.points[i][j])]))
        self.write(sweep_dir / BOUNDARY_CSV, rows)
        total = sum(r.runs for r in rows)
        log.info("boundary search: %d runs of the grid's %d, %d rounds -> %s", total, len(grid), round_no, sweep_dir)
        if failed:
            raise RuntimeError(f"boundary search: {failed} run(s) failed (counted as not trained); see their folders")
        return returns

    def launch_round(self, batch: list[list[str]], job_idx: int, grid) -> list[list]:
        """Launch the round's points and wait until each holds a result (their JobReturns, one list per launch): a
        point the launch skipped as held elsewhere (bench.Outcome.status) is waited for, and launched again when its
        holder ended without a result."""
        launches, todo = [], batch
        for _ in range(RELAUNCHES):
            launches.append(self.launcher.launch(todo, initial_job_idx=job_idx))
            job_idx += len(todo)
            elsewhere = [p for p, r in zip(todo, launches[-1]) if outcome(r) == RUNNING_ELSEWHERE or self.missing(p)]
            todo = [point for point in elsewhere if not self.settled(point, grid)]
            if not todo:
                return launches
            log.warning("boundary: %d point(s) whose holder ended without a result: launched again", len(todo))
        raise ConfigError(
            f"boundary search: {point_name(todo[0], grid)} has no result after {RELAUNCHES} launches: see its folder"
        )

    def missing(self, point: Sequence[str]) -> bool:
        return self.result(point).get("status") not in STATUSES

    def settled(self, point: Sequence[str], grid) -> bool:
        """Whether the point's folder holds a result, waiting while another live process holds its lock (a failed
        result too: that process retries it) (False: no result and no live holder: launch it again)."""
        lock, announced = RunLock(self.run_dirs[tuple(point)]), False
        while self.result(point).get("status") not in FINISHED:
            held = lock.live_holder()
            if held is None:  # released (or stale): its result, if written before the release, is there now
                return self.result(point).get("status") in STATUSES
            where = f"{point_name(point, grid)} is running elsewhere ({describe(*held)})"
            if not self.wait:
                raise ConfigError(f"boundary search: {where}: relaunch once it ends (or wait=true to wait for it)")
            if not announced:
                log.warning("boundary: %s: waiting for its result", where)
                announced = True
            time.sleep(self.poll_s)
        return True  # finished

    def next_runs(self, row: Row, rows: list[Row]) -> tuple[int, list[int]] | None:
        """The eta index and the seeds the row runs next; None when its search is over."""
        implied = self.implied(row, rows)
        if not row.own_only and row.contradicts(implied):
            log.warning("boundary: %s contradicts monotonicity in T_wrm: searched on its own", row.keys)
            row.own_only = True
        i = row.next_probe(implied)
        if i is None:
            return None
        seeds = row.pending(i)
        return i, seeds[:1] if self.seed_by_seed else seeds

    def result(self, point: Sequence[str]) -> dict:
        """The point's result.json (what every launcher leaves in the run folder)."""
        folder = self.run_dirs.get(tuple(point))
        try:
            return json.loads((folder / "result.json").read_text())
        except (OSError, ValueError, TypeError):
            return {"status": "missing"}

    def write(self, path: Path, rows: list[Row]) -> None:
        keys = [k for k in dict.fromkeys(_split(o)[0] for r in rows for o in r.keys)]
        varying = [k for k in keys if len({dict(map(_split, r.keys)).get(k) for r in rows}) > 1] or keys
        with io.StringIO(newline="") as f:
            out = csv.writer(f)
            out.writerow([*map(column, varying), "eta_max", "runs", "lower_bound", "monotone_checked"])
            for r in rows:
                values = dict(map(_split, r.keys))
                lo, _ = r.bracket({})
                eta_max = r.etas[lo] if lo >= 0 else ""
                top = lo == len(r.etas) - 1
                out.writerow([*(values.get(k, "") for k in varying), eta_max, r.runs, top, not r.own_only])
            atomic_write_text(path, f.getvalue())  # two searches of one folder may both write it
