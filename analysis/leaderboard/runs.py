"""Running the leaderboard and its runs table.

Each (workload, entry) is one multirun of launch.py in a subprocess (this package imports no training code): the local
launcher with packed runs (hydra.launcher.ensemble), optimizer.lr over the workload's grid and seed over
range(seeds), into OUT/<workload>/<entry>/ (its Hydra sweep folder). A rerun skips the finished points (the launcher
compares run identities), so an interrupted leaderboard resumes where it stopped.

The runs table (`TABLE_COLUMNS`, one row per run, keyed by `KEY`) is read from those run folders with analysis's
reader (load_runs, load_metrics) and merged into the stored table (reports/leaderboard/runs.csv): rows with the same
key are replaced, the file is written atomically.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hydra.errors import HydraException

from analysis.aggregate import SkippedItems, load_metrics, load_runs
from analysis.leaderboard.spec import ROOT, Entry, Workload, merged_overrides
from bench.runfolder import FINISHED, OVERRIDES, atomic_write_text, point_overrides, trainable

KEY = ["workload", "entry", "eta_trgt", "seed"]
TABLE_COLUMNS = [
    *KEY,
    "status",
    "trained",
    "rule",
    "initial_loss",
    "final_test_loss",
    "final_test_acc",
    "test_loss_curve",
    "steps",
    "extra_forward_passes",
    "extra_gradients",
    "wall_time_s",
    "run_identity",
    "git_sha",
]
EXTRA_GRADIENT = {"gi_adam": 1, "ri_adam": 1}  # g0 at theta0, computed before training (v0 from it)
STORED = Path("leaderboard") / "runs.csv"  # the stored table, inside the reports folder
GRID_KEYS = ("optimizer.lr", "seed")  # what the multirun sweeps
JOBS = 2  # jobs at the same time: the cores of the machine the CPU tier is sized for


@dataclass(frozen=True)
class Plan:
    """What one multirun trains: a workload x entry over `lrs` and `seeds` seeds, `extra` overrides last."""

    workload: Workload
    entry: Entry
    lrs: tuple[float, ...]
    seeds: int
    extra: tuple[str, ...] = ()

    @property
    def runs(self) -> int:
        return len(self.lrs) * self.seeds

    def overrides(self) -> list[str]:
        """What every point of the multirun is given, besides its rate and seed."""
        return [*merged_overrides(self.workload, self.entry, self.extra), "threads=1", "device=cpu"]

    def grid(self) -> pd.MultiIndex:
        return pd.MultiIndex.from_product([self.lrs, range(self.seeds)], names=["eta_trgt", "seed"])


def sweep_dir(out: Path, plan: Plan) -> Path:
    return Path(out) / plan.workload.name / plan.entry.name


def command(plan: Plan, sweep: Path, config_dirs: list[Path] = (), jobs: int = JOBS, pack: bool = True) -> list[str]:
    """The multirun: launch.py with the plan's overrides, the grid and the seeds, the local launcher packing the runs
    into `jobs` packs (points that cannot be packed, e.g. the catapult's, run alone: the launcher decides); without
    `pack` one job a run (make bench compares the two)."""
    lrs = ",".join(repr(float(x)) for x in plan.lrs)
    search = [f"file://{Path(d).resolve()}" for d in config_dirs]
    return [
        sys.executable,
        str(ROOT / "launch.py"),
        "-m",
        *plan.overrides(),
        f"optimizer.lr={lrs}",
        f"seed={','.join(map(str, range(plan.seeds)))}",
        "hydra/launcher=local",
        f"hydra.launcher.max_parallel={jobs}",
        f"hydra.launcher.ensemble={math.ceil(plan.runs / jobs) if pack else 1}",
        f"hydra.sweep.dir={Path(sweep).resolve()}",
        *([f"hydra.searchpath=[{','.join(search)}]"] if search else []),
    ]


def _env() -> dict[str, str]:
    """This environment, the checkout first on PYTHONPATH (a method's own package, on PYTHONPATH, stays found)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run(plan: Plan, out: Path, config_dirs: list[Path] = (), jobs: int = JOBS, pack: bool = True) -> bool:
    """One multirun into its sweep folder, its log beside it (<entry>.log); True when every point finished."""
    sweep = sweep_dir(out, plan)
    sweep.parent.mkdir(parents=True, exist_ok=True)
    log_path = sweep.parent / f"{plan.entry.name}.log"
    env = {**_env(), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(command(plan, sweep, config_dirs, jobs, pack), cwd=ROOT, env=env, stdout=log, stderr=log)
    wall = time.time() - start
    done = "done" if proc.returncode == 0 else f"exit {proc.returncode}, see {log_path}"
    print(
        f"[leaderboard] {plan.workload.name} / {plan.entry.name}: {plan.runs} runs, {done} ({wall:.0f} s)", flush=True
    )
    return proc.returncode == 0


def _curves(runs: pd.DataFrame) -> pd.Series:
    """[[step, test_loss], ...] of each run's evaluations (metrics.csv rows with a test loss) in step order, JSON."""
    steps = load_metrics(runs)
    curves = pd.Series("[]", index=runs.index)
    if steps.empty or "test_loss" not in steps:
        return curves
    evals = steps.dropna(subset=["test_loss"]).sort_values("step")
    by_run = {
        d: json.dumps([[int(s), float(v)] for s, v in zip(g["step"], g["test_loss"])])
        for d, g in evals.groupby("run_dir")
    }
    return runs["run_dir"].map(by_run).fillna("[]")


def finished(table: pd.DataFrame, plan: Plan) -> bool:
    """Whether every point of the plan has a finished run in its table (a failed one is retried): no need to launch
    it (the check before has compared each folder's identity with its point's config)."""
    done = table[table["status"].isin(FINISHED)]
    return len(done) == plan.runs


def _column(runs: pd.DataFrame, key: str, default=np.nan) -> pd.Series:
    return pd.to_numeric(runs[key], errors="coerce") if key in runs else pd.Series(default, index=runs.index)


def _point(overrides) -> set[tuple[str, str]]:
    """A point's defining overrides less its rate and seed, as (key, canonical value): the same however written."""
    return {(k, v) for k, v, _ in point_overrides(overrides, exclude=GRID_KEYS)}


def of_plan(runs: pd.DataFrame, plan: Plan) -> pd.Series:
    """Which runs of a sweep folder are the plan's points: the run's overrides (Hydra's record) are the plan's, its
    rate and seed on the plan's grid. A folder left by an earlier version of the workload or entry is not."""
    ours = _point(plan.overrides())

    def given(run_dir: str) -> bool:
        try:
            return _point(yaml.safe_load((Path(run_dir) / OVERRIDES).read_text())) == ours
        except (OSError, ValueError, TypeError, yaml.YAMLError, HydraException):
            return False

    on_grid = pd.MultiIndex.from_arrays([_column(runs, "optimizer.lr"), _column(runs, "seed")]).isin(plan.grid())
    return runs["run_dir"].map(given).astype(bool) & on_grid


def table(sweep: Path, plan: Plan) -> pd.DataFrame:
    """The runs table of one (workload, entry) sweep folder (empty if nothing finished): its runs of the plan's
    points; unreadable folders (running, killed) are left out, counted on stderr."""
    workload, entry = plan.workload, plan.entry
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedItems)
        runs = load_runs(sweep) if sweep.is_dir() else pd.DataFrame()
        runs = runs[of_plan(runs, plan)] if not runs.empty else runs
        curves = _curves(runs) if not runs.empty else None
    for w in caught:
        if isinstance(w.message, SkippedItems):
            print(f"[leaderboard] {workload.name} / {entry.name}: {w.message}", file=sys.stderr)
    if runs.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    completed = runs["status"] == "completed"
    lr = _column(runs, "lr").fillna(_column(runs, "optimizer.lr"))  # a failed run's result has no lr
    out = pd.DataFrame(
        {
            "workload": workload.name,
            "entry": entry.name,
            "eta_trgt": lr.astype(float),
            "seed": _column(runs, "seed").astype(int),
            "status": runs["status"],
            "trained": trainable(runs, workload.rule).astype(bool),
            "rule": workload.rule,
            "initial_loss": _column(runs, "initial_loss"),
            "final_test_loss": _column(runs, "final_test_loss").where(completed),
            "final_test_acc": _column(runs, "final_test_acc").where(completed),
            "test_loss_curve": curves,
            "steps": _column(runs, "steps").astype(int),
            "extra_forward_passes": _column(runs, "catapult_forward_passes", 0).fillna(0).astype(int),
            "extra_gradients": runs["optimizer.name"].map(EXTRA_GRADIENT).fillna(0).astype(int),
            # a pack's members share one process: each its share of the pack's wall time (comparable across entries)
            "wall_time_s": _column(runs, "wall_time_s") / _column(runs, "packed_with", 1).fillna(1),
            "run_identity": runs.get("run_identity"),
            "git_sha": runs.get("git_sha"),
        }
    )
    return out.sort_values(KEY).reset_index(drop=True)


def read_table(path: Path) -> pd.DataFrame:
    """A stored runs table; one line naming the file if it is not one."""
    try:
        t = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable runs table ({e})") from None
    missing = [c for c in TABLE_COLUMNS if c not in t]
    if missing:
        raise ValueError(f"{path}: not a runs table (no column {missing[0]})")
    return t[TABLE_COLUMNS]


def merge(stored: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The stored table with the new rows; a new row replaces the stored one with the same key."""
    frames = [t for t in (stored, new) if t is not None and not t.empty]
    if not frames:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    both = pd.concat(frames, ignore_index=True)
    both = both.drop_duplicates(subset=KEY, keep="last")
    return both.sort_values(KEY).reset_index(drop=True)[TABLE_COLUMNS]


def off_grid(stored: pd.DataFrame, plan: Plan) -> pd.Series:
    """The stored rows of the plan's (workload, entry) whose rate or seed is no longer on its grid (the workload's
    grid changed): they are dropped when the plan's rows are merged."""
    mine = (stored["workload"] == plan.workload.name) & (stored["entry"] == plan.entry.name)
    return mine & ~pd.MultiIndex.from_frame(stored[["eta_trgt", "seed"]]).isin(plan.grid())


def update_table(path: Path, new: pd.DataFrame, plan: Plan | None = None) -> pd.DataFrame:
    """Merge the new rows into the stored table at `path` (less the plan's rows off its grid) and write it back,
    holding a lock (path + .lock) from the read to the write: two leaderboards at once lose neither's rows. Returns
    the merged table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = read_table(path) if path.is_file() else None
        if stored is not None and plan is not None:
            stored = stored[~off_grid(stored, plan)]
        merged = merge(stored, new)
        write_table(path, merged)
    return merged


def write_table(path: Path, runs: pd.DataFrame) -> None:
    """Atomically: a reader (or a kill mid-write) sees the old table or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    runs.to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())


# run in a subprocess (bench and Hydra, not imported here): each plan's command checked as launch.py would check it
_CHECK = """
import json, sys
from bench.errors import ConfigError
from bench.sweeps.preflight import check_command
for name, argv in json.load(sys.stdin):
    try:
        check_command(argv)
    except ConfigError as e:
        sys.exit(f"{name}: {e}")
"""


def check(plans: list[Plan], out: Path, config_dirs: list[Path] = (), jobs: int = JOBS) -> None:
    """Every point of every plan composes and validates (keys, values, data on disk, a run folder of another config),
    in one process, before anything trains; ValueError (one line) for the first bad one."""
    if not plans:
        return
    argvs = [
        (f"{p.workload.name} / {p.entry.name}", command(p, sweep_dir(out, p), config_dirs, jobs)[2:]) for p in plans
    ]
    env = _env()
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK], input=json.dumps(argvs), capture_output=True, text=True, cwd=ROOT, env=env
    )
    if proc.returncode:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise ValueError(lines[-1] if lines else f"the check of the launch commands exited {proc.returncode}")
