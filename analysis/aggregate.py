"""Run folders -> one tidy pandas DataFrame: one row per run (flattened config + result), or per run and step.

A run folder is any folder holding result.json (and, beside it, config.yaml and metrics.csv); see bench/runfolder/
(the run-folder contract, the only thing analysis imports from bench).
Any number of sweep folders (or folders of sweeps) can be read at once. What cannot be read is skipped and counted in
ONE warning (a `SkippedItems`, which lists them), never an error. Skipped items:
  - a run folder whose result.json is missing (still running, or killed), truncated, or not a run's result, or has a
    field of the wrong type (a status that is not completed / diverged / failed, a metric that is not a number);
  - a run folder whose config.yaml is missing or unreadable, or whose eta_trgt, T_wrm or seed is not a number;
  - a run folder whose result.json's run_identity is not its config.yaml's (config.yaml edited after the run, or the
    result copied): its result proves nothing about that config (bench.runfolder.unproven_result);
  - a completed or diverged run without metrics.csv (the harness writes it before result.json: the folder is partial;
    the run is left out of both tables, so that they agree). A failed run may have no metrics.csv (it can fail
    before its first evaluation): it is a row of the run table with no steps;
  - for the per-step table only, a metrics.csv that cannot be parsed;
  - an unrelated file: a file in a folder that is not a run folder, other than multirun.yaml, logs, hidden files and
    analysis outputs (.png, .pdf, .svg, .csv, .parquet). Files inside a run folder are the run's business.
Folders named wandb and hidden folders (.hydra, .submitit) are not searched.

The run table records which of its columns come from config.yaml in `runs.attrs["config_keys"]` (a result key such
as lr, the absolute eta_trgt, is not one): analysis.phase keeps runs of different configs apart with it.

Tables are cached per sweep folder as runs.parquet / steps.parquet inside it; the cache holds a fingerprint (path,
size, modification time) of the files it was built from, and is rebuilt when any of them changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench.runfolder import CONFIG, METRICS, NONFINITE, NUMBERS, RESULT, STATUSES, atomic_write, unproven_result

log = logging.getLogger(__name__)

# the run-folder contract (file names, statuses, the result schema, the atomic writer): bench/runfolder/
LR, WARMUP, SEED = "optimizer.lr", "schedule.warmup_steps", "seed"  # the phase diagram's config keys


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


SKIP_DIRS = {"wandb", "__pycache__"}  # besides hidden folders
KNOWN_SUFFIXES = {".png", ".pdf", ".svg", ".csv", ".parquet", ".log"}  # analysis outputs and logs beside runs
KNOWN_NAMES = {"multirun.yaml"}
CACHE_VERSION = "2"
AXES = (LR, WARMUP, SEED)  # config keys the phase diagram needs as numbers


class SkippedItems(UserWarning):
    """The one warning of load_runs / load_steps: its message counts the skipped items, `items` names them all."""

    def __init__(self, items: list[str]):
        shown = "; ".join(items[:10]) + ("; ..." if len(items) > 10 else "")
        super().__init__(f"skipped {len(items)} unreadable item(s): {shown}")
        self.items = items


@dataclass
class Scan:
    """What a sweep folder holds: the readable run folders, the skipped items, and the files both come from."""

    root: Path
    runs: list[Path] = field(default_factory=list)
    candidates: list[Path] = field(default_factory=list)  # folders that look like run folders
    unrelated: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # everything the tables depend on (for the cache fingerprint)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{CACHE_VERSION} {self.root.resolve()}".encode())
        for f in sorted(self.files):
            try:
                st = f.stat()
                h.update(f"{f.relative_to(self.root)} {st.st_size} {st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{f} gone\n".encode())
        return h.hexdigest()


def _unrelated(name: str) -> bool:
    return not (name.startswith(".") or name in KNOWN_NAMES or Path(name).suffix in KNOWN_SUFFIXES)


def scan(root: str | Path) -> Scan:
    """Walk one root: folders with a run file are run-folder candidates; other folders' stray files are unrelated."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{'not a folder' if root.exists() else 'no such sweep folder'}: {root}")
    found = Scan(root)
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        here = Path(folder)
        if {RESULT, CONFIG, METRICS} & set(names):
            found.candidates.append(here)
            found.files += [here / n for n in (RESULT, CONFIG, METRICS) if n in names]
            dirs[:] = []  # a run folder's subfolders (checkpoints, ...) are the run's business
        else:
            stray = [here / n for n in sorted(names) if _unrelated(n)]
            found.unrelated += stray
            found.files += stray
    return found


def _number(value, what: str):
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value in NONFINITE:
        return NONFINITE[value]
    raise ValueError(f"{what} is {value!r}, not a number")


def check_result(result) -> dict:
    """result.json's content with its typed fields checked (numbers as numbers); raises ValueError naming the field."""
    if not isinstance(result, dict) or "status" not in result:
        raise ValueError("result.json is not a run's result (no status)")
    if result["status"] not in STATUSES:
        raise ValueError(f"result.json: status is {result['status']!r}, not one of {', '.join(STATUSES)}")
    return {k: _number(v, f"result.json: {k}") if k in NUMBERS else v for k, v in result.items()}


def read_run(run_dir: Path) -> tuple[dict, dict]:
    """The run's flattened resolved config and its checked result. Raises ValueError on a corrupt or partial folder."""
    if not (run_dir / RESULT).exists():
        raise ValueError("no result.json (still running, or killed)")
    try:
        result = check_result(json.loads((run_dir / RESULT).read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"result.json is truncated or not JSON ({e})") from e
    if not (run_dir / CONFIG).exists():
        raise ValueError("no config.yaml")
    try:
        config = yaml.safe_load((run_dir / CONFIG).read_text())
    except UnicodeDecodeError as e:
        raise ValueError(f"config.yaml is not text ({e})") from e
    if not isinstance(config, dict):
        raise ValueError("config.yaml is not a mapping")
    config = flatten(config)
    for key in AXES:
        if key in config:
            _number(config[key], f"config.yaml: {key}")
    if unproven := unproven_result(run_dir):  # never used: its result is not of the config it would be read as
        raise ValueError(f"excluded: {unproven}")
    if result["status"] in ("completed", "diverged") and not (run_dir / METRICS).exists():
        raise ValueError(f"{result['status']} run without metrics.csv (partial folder)")
    return config, result


def load_run(run_dir: Path) -> dict:
    """One row: the run's flattened resolved config and its result. Raises on a corrupt or partial folder."""
    config, result = read_run(run_dir)
    return {**config, **result, "run_dir": str(run_dir)}


def _read_cache(path: Path, fingerprint: str) -> tuple[pd.DataFrame, list[str]] | None:
    """The cached table and its skipped items, if the cache was built from the files as they are now."""
    try:
        meta = json.loads(pq.read_schema(path).metadata[b"warmup_bench"])
        if meta["fingerprint"] != fingerprint:
            return None
        table = pd.read_parquet(path)
        table.attrs = meta["attrs"]
        return table, meta["skipped"]
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
        return None


def _write_cache(path: Path, table: pd.DataFrame, fingerprint: str, skipped: list[str]) -> None:
    """Write atomically; a table pyarrow cannot store (mixed-type columns) or a read-only folder just is not cached."""
    try:
        t = pa.Table.from_pandas(table, preserve_index=False)
        ours = json.dumps({"fingerprint": fingerprint, "skipped": skipped, "attrs": table.attrs})
        meta = {**(t.schema.metadata or {}), b"warmup_bench": ours}
        t = t.replace_schema_metadata(meta)
        atomic_write(path, lambda f: pq.write_table(t, f), binary=True)  # readers see the old or the new cache
    except (OSError, ValueError, TypeError, pa.ArrowException) as e:
        log.debug("not cached: %s: %s", path, e)


def _cached(kind: str, root: Path, build, cache: bool) -> tuple[pd.DataFrame, list[str]]:
    found = scan(root)
    path = root / f"{kind}.parquet"
    fingerprint = found.fingerprint()
    if cache:
        hit = _read_cache(path, fingerprint)
        if hit is not None:
            return hit
    table, skipped = build(found)
    if cache:
        _write_cache(path, table, fingerprint, skipped)
    return table, skipped


def _build_runs(found: Scan) -> tuple[pd.DataFrame, list[str]]:
    rows, skipped, config_keys = [], [f"{f}: unrelated file" for f in found.unrelated], set()
    for d in found.candidates:
        try:
            config, result = read_run(d)
        except (OSError, ValueError, yaml.YAMLError) as e:
            skipped.append(f"{d}: {e}")
            continue
        rows.append({**config, **result, "run_dir": str(d), "sweep": str(found.root)})
        config_keys |= set(config)
    table = pd.DataFrame(rows)
    table.attrs["config_keys"] = sorted(config_keys)
    return table, skipped


def _read_steps(run_dirs) -> tuple[pd.DataFrame, list[str]]:
    """The metrics.csv rows of the runs, with run_dir; the per-step reader of both load_steps and load_metrics."""
    frames, skipped = [], []
    for run_dir in run_dirs:
        path = Path(run_dir) / METRICS
        if not path.exists():  # a failed run that never evaluated: no steps, nothing wrong
            continue
        try:
            m = pd.read_csv(path)
            if "step" not in m.columns:
                raise ValueError("no step column")
        except (OSError, ValueError, pd.errors.ParserError) as e:  # EmptyDataError is a ValueError
            skipped.append(f"{path}: unreadable metrics.csv ({e})")
            continue
        frames.append(m.assign(run_dir=run_dir))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), skipped


def _build_steps(found: Scan) -> tuple[pd.DataFrame, list[str]]:
    runs, skipped = _build_runs(found)
    steps, unreadable = _read_steps(runs.get("run_dir", []))
    return steps, skipped + unreadable


def _warn(skipped: list[str]) -> None:
    if skipped:
        warnings.warn(SkippedItems(skipped), stacklevel=3)


REPOSITORY = Path(__file__).resolve().parent.parent  # the checkout: analysis/ sits at its top


def notebook_sweeps(default: str = "outputs/sweeps/demo") -> list[Path]:
    """The sweep folders a notebook reads: $WARMUP_BENCH_SWEEP (":"-separated), else `default`. A relative folder is
    taken from the repository root, wherever the kernel starts (Jupyter starts it in analysis/notebooks/), unless it
    exists only from the current folder (an installed package's user)."""
    out = []
    for p in map(Path, os.environ.get("WARMUP_BENCH_SWEEP", default).split(":")):
        out.append(p if p.is_absolute() or (p.exists() and not (REPOSITORY / p).exists()) else REPOSITORY / p)
    return [p.resolve() for p in out]  # one spelling per folder: the tables' run_dir columns match across caches


def load_runs(*roots: str | Path, cache: bool = True) -> pd.DataFrame:
    """All runs below the roots, one row each: flattened config, result, run_dir and sweep (the root it came from).
    Unreadable items are skipped with one warning that counts them (see the module's docstring). The columns that come
    from config.yaml are listed in the table's attrs["config_keys"]."""
    tables, skipped, config_keys = [], [], set()
    for root in map(Path, roots):
        table, s = _cached("runs", root, _build_runs, cache)
        tables.append(table)
        skipped += s
        config_keys |= set(table.attrs.get("config_keys", []))
    _warn(skipped)
    tables = [t for t in tables if not t.empty]
    runs = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    runs.attrs = {"config_keys": sorted(config_keys)}
    return runs


def load_steps(*roots: str | Path, keys: list[str] | None = None, cache: bool = True) -> pd.DataFrame:
    """The per-step table of all runs below the roots: metrics.csv rows with run_dir and the chosen columns of the
    run table (config keys such as optimizer.lr, or results such as status). Skipped items as in load_runs, plus
    unreadable metrics.csv files."""
    tables, skipped = [], []
    for root in map(Path, roots):
        table, s = _cached("steps", root, _build_steps, cache)
        tables.append(table)
        skipped += s
    _warn(skipped)
    tables = [t for t in tables if not t.empty]
    steps = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if keys and not steps.empty:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already warned above
            runs = load_runs(*roots, cache=cache)
        steps = steps.merge(runs[["run_dir", *keys]], on="run_dir", how="left")
    return steps


def load_metrics(runs: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """The per-step table of the given runs (rows of load_runs, e.g. a selection), with the chosen config keys as
    columns; unreadable metrics.csv files are skipped with one warning, as in load_steps."""
    steps, skipped = _read_steps(runs["run_dir"] if "run_dir" in runs else [])
    _warn(skipped)
    if keys and not steps.empty:
        steps = steps.merge(runs[["run_dir", *keys]], on="run_dir", how="left")
    return steps
