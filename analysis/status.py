"""The state of a sweep at a glance: python -m analysis status SWEEP_DIR.

Every grid point of the sweep (read from the multirun.yaml Hydra writes into the sweep folder) is
  completed / diverged / failed   its result.json says so (written last, so the run has ended)
  running                         its folder exists (a checkpoint, metrics or Hydra's files) but has no result.json:
                                  it runs, waits to be requeued, or died before it could say so
  missing                         no folder yet (never started)
A run folder is matched to its grid point by the overrides Hydra saved in it (.hydra/overrides.yaml), compared as
bench/runfolder/'s run_id compares them, so the folder-naming pattern does not matter. A result.json that cannot be
read, or whose run_identity is not its config.yaml's (config.yaml edited after the run: the result proves nothing about
it), counts as failed (its error says why); an unreadable metrics.csv or multirun.yaml is noted, never a traceback. A
single run's folder (no multirun.yaml, run files of its own) gets one line: its status. A result.json that does not
match the contract's schema (bench/runfolder/: a required key missing, a known key of the wrong type) is noted.
Imports no torch and nothing of bench but its run-folder contract.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from bench.runfolder import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    MULTIRUN,
    OVERRIDES,
    RESULT,
    STATUSES,
    TRACEBACK,
    check_result,
    column,
    point_overrides,
    run_id,
    unproven_result,
)

STATES = (*STATUSES, "running", "missing")
CODES = {"completed": "C", "diverged": "D", "failed": "F", "running": "R", "missing": "."}
RUN_FILES = (RESULT, CHECKPOINT, METRICS, CONFIG, OVERRIDES)
COLUMNS = ("status", "run_dir", "step", "error", "last_line", "note")  # the rest: the swept keys


def grid(sweep_dir: Path) -> tuple[list[list[str]], list[str]]:
    """The override list of every grid point of the sweep, and the keys excluded from run identity."""
    path = sweep_dir / MULTIRUN
    if not path.exists():
        return [], []
    try:
        hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra", {})
        params = [f"{k}={v}" for k, v in (hydra.get("sweeper", {}).get("params") or {}).items()]
        arguments = params + list(hydra.get("overrides", {}).get("task") or [])
        points = expand(arguments)
        job = hydra.get("job", {}).get("config", {}) or {}
        exclude = (job.get("override_dirname", {}) or {}).get("exclude_keys")
    except (OSError, ValueError, AttributeError, TypeError, yaml.YAMLError, HydraException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path} is unreadable: {first}") from None
    return points, list(exclude or [])


def expand(arguments: list[str]) -> list[list[str]]:
    """The grid points of a sweep's overrides (the basic sweeper's cartesian product, in its order), through Hydra's
    public override parser: a key given twice keeps its last value; a range or interval sweep is refused."""
    choices: dict[str, list[str]] = {}
    for o in OverridesParser.create().parse_overrides(arguments):
        key = o.get_key_element()
        if o.is_sweep_override() and not o.is_discrete_sweep():
            raise ValueError(f"{key}: a {o.value_type.name} sweep is not a grid")
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        choices[key] = [f"{key}={v}" for v in values]
    return [list(point) for point in itertools.product(*choices.values())]


def axis_values(sweep_dirs, keys: list[str]) -> dict[str, list[float]]:
    """The numeric values each key takes in the grids (multirun.yaml) of the sweep folders, also at points that never
    ran; keys no grid sweeps are left out. An unreadable or non-grid multirun.yaml (e.g. Optuna's) adds nothing."""
    values: dict[str, set] = {k: set() for k in keys}
    for d in sweep_dirs:
        try:
            points, _ = grid(Path(d))
        except ValueError:
            continue
        for point in points:
            for key, canonical, _ in point_overrides(point):
                value = json.loads(canonical)
                if key in values and isinstance(value, float):
                    values[key].add(int(value) if value.is_integer() else value)  # T_wrm 256, not 256.0
    return {k: sorted(v) for k, v in values.items() if v}


def run_folders(sweep_dir: Path) -> list[Path]:
    """Folders below the sweep folder that hold any file a run writes."""
    found = {
        p.parent.parent if name.startswith(".hydra") else p.parent
        for name in RUN_FILES
        for p in sweep_dir.rglob(Path(name).name)
        if p.as_posix().endswith(name) and ".submitit" not in p.parts
    }
    return sorted(d for d in found if d != sweep_dir and d.name != ".hydra")


def folder_state(run_dir: Path) -> dict:
    """status, last logged step and, for a failure, its error line and the traceback's last line."""
    row: dict = {"run_dir": str(run_dir), "step": None, "error": None, "last_line": None, "note": None}
    metrics = run_dir / METRICS
    if metrics.exists():
        try:
            steps = pd.read_csv(metrics)["step"]
            row["step"] = int(steps.iloc[-1]) if len(steps) else None
        except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as e:  # garbled, binary, no step
            row["note"] = f"metrics.csv unreadable ({type(e).__name__})"
    path = run_dir / RESULT
    if not path.exists():
        row["status"] = "running"
        return row
    try:
        result = json.loads(path.read_text())
        if not isinstance(result, dict) or result.get("status") not in ("completed", "diverged", "failed"):
            raise ValueError(f"status {result.get('status')!r}" if isinstance(result, dict) else "not a run's result")
    except (OSError, ValueError) as e:  # a result is written last and atomically: the run ended, its record is damaged
        row.update(status="failed", error=f"result.json unreadable ({str(e).splitlines()[0][:120]})")
        return row
    if unproven := unproven_result(run_dir):  # not a result of this folder's config: counted as failed, never used
        row.update(status="failed", error=f"excluded: {unproven}")
        return row
    row["status"] = result["status"]
    problems = check_result(result)  # against the contract's schema (bench/runfolder/)
    if problems:
        row["note"] = "; ".join(
            filter(None, [row["note"], "result.json does not match the schema: " + "; ".join(problems)])
        )
    if isinstance(result.get("stop_step"), int) and not isinstance(result["stop_step"], bool):
        row["step"] = result["stop_step"]
    if result["status"] == "failed":
        row["error"] = str(result.get("error") or "no error recorded in result.json")
        row["last_line"] = _last_line(run_dir / TRACEBACK)
    return row


def _last_line(path: Path) -> str | None:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


def _overrides_of(run_dir: Path) -> list[str] | None:
    """The overrides Hydra saved in the run folder; None when missing or garbled (then matched by folder name)."""
    path = run_dir / OVERRIDES
    try:
        overrides = yaml.safe_load(path.read_text()) or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            return None
        point_overrides(overrides)
        return overrides
    except (OSError, ValueError, yaml.YAMLError, HydraException):
        return None


def sweep_status(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per grid point (and per run folder outside the grid): the swept keys, status, step, error."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{'not a folder' if sweep_dir.exists() else 'no such sweep folder'}: {sweep_dir}")
    points, exclude = grid(sweep_dir)
    by_point = {}
    for d in run_folders(sweep_dir):
        overrides = _overrides_of(d)
        key = tuple(point_overrides(overrides, exclude)) if overrides is not None else ("folder", d.name)
        by_point[key] = (d, overrides)
    rows = []
    for point in points:  # matched by the overrides saved in the folder, else by the folder's name (its run id)
        found = by_point.pop(tuple(point_overrides(point, exclude)), None)
        found = found or by_point.pop(("folder", run_id(point, exclude)), None)
        state = folder_state(found[0]) if found else {"status": "missing", "run_dir": None}
        if found and found[1] is None:
            state["note"] = "no readable .hydra/overrides.yaml (matched by its folder name)"
        rows.append({**_values(point), **state})
    for d, overrides in by_point.values():  # folders of points that are not in the grid (any more)
        state = folder_state(d)
        if overrides is None and points:
            state["note"] = "no readable .hydra/overrides.yaml: not matched to a grid point"
        rows.append({**_values(overrides or []), **state})
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=COLUMNS)
    table["step"] = table["step"].astype("Int64")
    swept = [c for c in table.columns if c not in COLUMNS]
    varying = [c for c in swept if table[c].nunique(dropna=False) > 1]
    return table[varying + [c for c in table.columns if c not in swept]]


def _values(overrides: list[str]) -> dict:
    return {column(k): shown for k, _, shown in point_overrides(overrides)}


def counts(table: pd.DataFrame) -> dict[str, int]:
    return {s: int((table["status"] == s).sum()) for s in STATES}


def single_run(run_dir: Path) -> str | None:
    """One line for a single run's folder (run files of its own, no multirun.yaml); None for anything else."""
    if (run_dir / MULTIRUN).exists() or not any((run_dir / name).exists() for name in RUN_FILES):
        return None
    row = folder_state(run_dir)
    line = f"{run_dir}: a single run's folder, not a sweep (no multirun.yaml): {row['status']}"
    line += f" at step {row['step']}" if row["step"] is not None else ""
    line += f": {row['error']}" if row["error"] else ""
    return line + (f"; {row['note']}" if row["note"] else "")


def report(sweep_dir: str | Path) -> str:
    """The text `python -m analysis status` prints."""
    sweep_dir = Path(sweep_dir)
    if sweep_dir.is_dir() and (line := single_run(sweep_dir)):
        return line
    table = sweep_status(sweep_dir)
    if table.empty:
        return f"{sweep_dir}: not a sweep yet: no grid (multirun.yaml) and no run folders"
    n = counts(table)
    lines = [f"{sweep_dir}: {len(table)} points: " + ", ".join(f"{v} {k}" for k, v in n.items())]
    keys = [c for c in table.columns if c not in COLUMNS]
    if len(keys) == 2:  # the phase-diagram view: one letter per point
        grid_view = table.assign(code=table["status"].map(CODES)).pivot_table(
            index=keys[0], columns=keys[1], values="code", aggfunc="first", sort=False
        )
        lines += ["", f"rows {keys[0]}, columns {keys[1]}: " + ", ".join(f"{c} {s}" for s, c in CODES.items())]
        lines.append(grid_view.fillna("?").to_string())
    else:  # no swept keys to tell the points apart (no .hydra/overrides.yaml): the folder names
        shown = table if keys else table.assign(run=table["run_dir"].map(lambda d: Path(d).name if d else None))
        lines += ["", shown[(keys or ["run"]) + ["status", "step"]].to_string(index=False)]
    failed = table[table["status"] == "failed"]
    if len(failed):
        lines += ["", "failures:"]
        for _, row in failed.iterrows():
            lines.append(f"  {Path(row['run_dir']).name}: {row['error']}")
            if pd.notna(row["last_line"]) and row["last_line"] and row["last_line"] != row["error"]:
                lines.append(f"    {row['last_line']}")
    noted = table[table["note"].notna()]
    if len(noted):
        lines += ["", "notes:"] + [f"  {Path(r['run_dir']).name}: {r['note']}" for _, r in noted.iterrows()]
    return "\n".join(lines)
