"""The state of a sweep at a glance: python -m analysis status SWEEP_DIR.

Every grid point of the sweep (read from the multirun.yaml Hydra writes into the sweep folder) is
  completed / diverged / failed   its result.json says so (written last, so the run has ended)
  running                         its folder exists (a checkpoint, metrics or Hydra's files) but has no result.json:
                                  it runs, waits to be requeued, or died before it could say so
  missing                         no folder yet (never started)
A run folder is matched to its grid point by the overrides Hydra saved in it (.hydra/overrides.yaml), compared as
bench/runid.py compares them, so the folder-naming pattern does not matter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from bench.runid import identity

STATES = ("completed", "diverged", "failed", "running", "missing")
CODES = {"completed": "C", "diverged": "D", "failed": "F", "running": "R", "missing": "."}
RUN_FILES = ("result.json", "checkpoint.pt", "metrics.csv", "config.yaml", ".hydra/overrides.yaml")


def grid(sweep_dir: Path) -> tuple[list[list[str]], list[str]]:
    """The override list of every grid point of the sweep, and the keys excluded from run identity."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return [], []
    hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra", {})
    params = [f"{k}={v}" for k, v in (hydra.get("sweeper", {}).get("params") or {}).items()]
    arguments = params + list(hydra.get("overrides", {}).get("task") or [])
    parsed = OverridesParser.create().parse_overrides(arguments)
    points = [list(p) for batch in BasicSweeper.split_arguments(parsed, None) for p in batch]
    exclude = ((hydra.get("job", {}).get("config", {}) or {}).get("override_dirname", {}) or {}).get("exclude_keys")
    return points, list(exclude or [])


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
    row: dict = {"run_dir": str(run_dir), "step": None, "error": None, "last_line": None}
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        try:
            steps = pd.read_csv(metrics)["step"]
            row["step"] = int(steps.iloc[-1]) if len(steps) else None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, KeyError, OSError):
            pass
    try:
        result = json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict) or result.get("status") not in ("completed", "diverged", "failed"):
        row["status"] = "running"
        return row
    row["status"] = result["status"]
    if result.get("stop_step") is not None:
        row["step"] = result["stop_step"]
    if result["status"] == "failed":
        row["error"] = result.get("error")
        tb = run_dir / "traceback.txt"
        lines = [ln.strip() for ln in tb.read_text(errors="replace").splitlines() if ln.strip()] if tb.exists() else []
        row["last_line"] = lines[-1] if lines else None
    return row


def _overrides_of(run_dir: Path) -> list[str] | None:
    path = run_dir / ".hydra" / "overrides.yaml"
    try:
        return list(yaml.safe_load(path.read_text()) or [])
    except (OSError, yaml.YAMLError):
        return None


def sweep_status(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per grid point (and per run folder outside the grid): the swept keys, status, step, error."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no such sweep folder: {sweep_dir}")
    points, exclude = grid(sweep_dir)
    by_identity = {}
    for d in run_folders(sweep_dir):
        overrides = _overrides_of(d)
        key = tuple(identity(overrides, exclude)) if overrides is not None else ("folder", d.name)
        by_identity[key] = (d, overrides or [])
    rows = []
    for point in points:
        key = tuple(identity(point, exclude))
        found = by_identity.pop(key, None)
        state = folder_state(found[0]) if found else {"status": "missing", "run_dir": None}
        rows.append({**_values(point), **state})
    for d, overrides in by_identity.values():  # folders of points that are not in the grid (any more)
        rows.append({**_values(overrides), **folder_state(d)})
    table = pd.DataFrame(rows)
    table["step"] = table["step"].astype("Int64")
    swept = [c for c in table.columns if c not in ("status", "run_dir", "step", "error", "last_line")]
    varying = [c for c in swept if table[c].nunique(dropna=False) > 1]
    return table[varying + [c for c in table.columns if c not in swept]]


def _values(overrides: list[str]) -> dict:
    return {k: shown for k, _, shown in identity(overrides)}


def counts(table: pd.DataFrame) -> dict[str, int]:
    return {s: int((table["status"] == s).sum()) for s in STATES}


def report(sweep_dir: str | Path) -> str:
    """The text `python -m analysis status` prints."""
    table = sweep_status(sweep_dir)
    if table.empty:
        return f"{sweep_dir}: no grid (multirun.yaml) and no run folders"
    n = counts(table)
    lines = [f"{sweep_dir}: {len(table)} points: " + ", ".join(f"{v} {k}" for k, v in n.items())]
    keys = [c for c in table.columns if c not in ("status", "run_dir", "step", "error", "last_line")]
    if len(keys) == 2:  # the phase-diagram view: one letter per point
        grid_view = table.assign(code=table["status"].map(CODES)).pivot_table(
            index=keys[0], columns=keys[1], values="code", aggfunc="first", sort=False
        )
        lines += ["", f"rows {keys[0]}, columns {keys[1]}: " + ", ".join(f"{c} {s}" for s, c in CODES.items())]
        lines.append(grid_view.fillna("?").to_string())
    else:
        lines += ["", table[keys + ["status", "step"]].to_string(index=False)]
    failed = table[table["status"] == "failed"]
    if len(failed):
        lines += ["", "failures:"]
        for _, row in failed.iterrows():
            lines.append(f"  {Path(row['run_dir']).name}: {row['error']}")
            if row["last_line"] and row["last_line"] != row["error"]:
                lines.append(f"    {row['last_line']}")
    return "\n".join(lines)
