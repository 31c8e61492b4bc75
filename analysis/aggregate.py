"""Run folders -> one tidy pandas DataFrame: one row per run (flattened config + result), or per run and step.

A run folder is any folder holding result.json (and, beside it, config.yaml and metrics.csv); see bench/store.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import yaml

RESULT, CONFIG, METRICS = "result.json", "config.yaml", "metrics.csv"


def flatten(d: dict, prefix: str = "") -> dict:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}"""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def run_dirs(*roots: str | Path) -> list[Path]:
    """Every folder below the roots that holds a result.json, sorted."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.exists():
            raise FileNotFoundError(f"no such sweep folder: {root}")
        found.update(p.parent for p in root.rglob(RESULT))
    return sorted(found)


def load_run(run_dir: Path) -> dict:
    """One row: the run's flattened resolved config and its result. Raises on a corrupt or partial folder."""
    result = json.loads((run_dir / RESULT).read_text())
    if not isinstance(result, dict) or "status" not in result:
        raise ValueError("result.json has no status")
    config = yaml.safe_load((run_dir / CONFIG).read_text())
    if not isinstance(config, dict):
        raise ValueError("config.yaml is not a mapping")
    return {**flatten(config), **result, "run_dir": str(run_dir)}


def load_runs(*roots: str | Path) -> pd.DataFrame:
    """All runs below the roots; unreadable folders are skipped with one warning that counts them."""
    rows, skipped = [], []
    for d in run_dirs(*roots):
        try:
            rows.append(load_run(d))
        except (OSError, ValueError, yaml.YAMLError) as e:
            skipped.append(f"{d}: {e}")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable run folder(s): " + "; ".join(skipped), stacklevel=2)
    return pd.DataFrame(rows)


def load_metrics(runs: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """The per-step table of the given runs (rows of load_runs), with the chosen config keys as columns."""
    keys = keys or []
    frames = []
    for _, run in runs.iterrows():
        path = Path(run["run_dir"]) / METRICS
        if not path.exists():
            continue
        m = pd.read_csv(path)
        m["run_dir"] = run["run_dir"]
        for k in keys:
            m[k] = run[k]
        frames.append(m)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
