"""A run's folder: the resolved config, the metrics table and result.json, all written atomically.

Files follow the user's umask (0644 under umask 022, like Hydra's own files), so teammates can read a shared sweep.
A write the machine refuses (disk full, quota, read-only or not writable folder) raises StorageError: one line
that names the file and says why, with no chained traceback.

The layout of a run folder and the meaning of every result.json key: bench/runfolder.py (the contract analysis reads).
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

# the contract (file names, the one atomic writer, storage errors) lives in bench/runfolder.py
from bench.runfolder import (  # noqa: E402, F401  (re-exported: bench's modules import them from here)
    CONFIG,
    FORMAT,
    METRICS,
    RESULT,
    StorageError,
    atomic_write,
    atomic_write_text,
    storage_error,
    umask,
)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
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
        result["format"] = FORMAT  # the schema's version (bench/runfolder.py); in the caller's dict too, so that
        # what a run returns equals what its folder holds (a finished run relaunched returns the file)
        atomic_write_text(self.dir / RESULT, json.dumps(_json_safe(result), indent=2, sort_keys=True) + "\n")

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
