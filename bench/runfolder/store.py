"""A run's folder: the resolved config, the metrics table and result.json, all written atomically.

Files follow the user's umask (0644 under umask 022, like Hydra's own files), so teammates can read a shared sweep.
A write the machine refuses (disk full, quota, read-only or not writable folder) raises StorageError: one line
that names the file and says why, with no chained traceback.

The layout of a run folder and the meaning of every result.json key: bench/runfolder/__init__.py (the contract).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import platform
import subprocess
import sys
from pathlib import Path

from bench.runfolder import (
    CHECKPOINT,
    CONFIG,
    FINISHED,
    FORMAT,
    METRICS,
    RESULT,
    TRACEBACK,
    atomic_write_text,
    storage_error,
)

log = logging.getLogger(__name__)


def json_safe(value):
    """value as JSON can hold it: NaN null, +-inf "inf" / "-inf" (the contract's NUM)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def rows_to_csv(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class RunStore:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise storage_error(self.dir, e) from None

    def write_config(self, yaml_text: str) -> None:
        atomic_write_text(self.dir / CONFIG, yaml_text)

    def write_metrics(self, rows: list[dict]) -> None:
        atomic_write_text(self.dir / METRICS, rows_to_csv(rows))

    def write_text(self, name: str, text: str) -> None:
        """Any other file of the run (traceback.txt)."""
        atomic_write_text(self.dir / name, text)

    def write_result(self, result: dict) -> None:
        result["format"] = (
            FORMAT  # the schema's version (bench/runfolder/__init__.py); in the caller's dict too, so that
        )
        # what a run returns equals what its folder holds (a finished run relaunched returns the file)
        atomic_write_text(self.dir / RESULT, json.dumps(json_safe(result), indent=2, sort_keys=True) + "\n")

    def result(self) -> dict | None:
        path = self.dir / RESULT
        return json.loads(path.read_text()) if path.exists() else None


def save_config(cfg, filename: str, output_dir: Path) -> None:
    """Hydra's _save_config (a run's .hydra/config.yaml, hydra.yaml, overrides.yaml), written atomically: a full
    disk is a StorageError in one line and leaves no empty file (hydra_plugins/warmup_bench puts it in Hydra's
    place)."""
    from omegaconf import OmegaConf

    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(output_dir, e) from None
    atomic_write_text(output_dir / filename, OmegaConf.to_yaml(cfg))


def git_sha() -> str:
    """The commit of the source tree the harness runs from ('+dirty' when it has uncommitted changes)."""
    src = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    import torch

    return {
        "git_sha": git_sha(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


# --- the run folder before and after training ------------------------------------------------------------------
def finished_result(store: RunStore, force: bool) -> dict | None:
    """The result of a finished run in this folder (then the caller skips it), or None after clearing what a new
    attempt must not see: everything on force=true, a failed attempt's result.json and traceback otherwise (its
    checkpoint stays, so that the retry resumes)."""
    result = _read_result(store)
    if result is not None and result.get("status") in FINISHED and not force:
        log.info("%s: already %s (result.json), skipped; force=true reruns it", store.dir, result["status"])
        return result
    stale = [RESULT, TRACEBACK] + ([CHECKPOINT, METRICS] if force else [])
    for name in stale:
        (store.dir / name).unlink(missing_ok=True)
    return None


def _read_result(store: RunStore) -> dict | None:
    try:
        return store.result()
    except ValueError:  # a corrupt result.json is not a finished run
        return None


def finish(store: RunStore) -> None:
    """result.json is written: the checkpoint is no longer needed (thousands of runs would keep them all)."""
    (store.dir / CHECKPOINT).unlink(missing_ok=True)
