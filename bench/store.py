"""A run's folder: the resolved config, the metrics table and result.json, all written atomically.

Files follow the user's umask (0644 under umask 022, like Hydra's own files), so teammates can read a shared sweep.
A write the machine refuses (disk full, quota, read-only or not writable folder) raises StorageError: one line
that names the file and says why, with no chained traceback.

Layout of a run folder (analysis reads only these files):
  config.yaml    the resolved config of the run
  metrics.csv    one row per logged step (step, lr, train_loss, train_acc, test_loss, test_acc, ...)
  result.json    written last: its presence means the run has ended (completed | diverged | failed)
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

CONFIG = "config.yaml"
METRICS = "metrics.csv"
RESULT = "result.json"


_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


class StorageError(OSError):
    """The machine refused a write: kind is disk_full or read_only (result.json's error_type)."""

    def __init__(self, path: Path, err: OSError):
        full = err.errno in _FULL
        self.kind = "disk_full" if full else "read_only"
        why = "the disk is full (or the quota is spent)" if full else "the folder is read-only or not writable"
        super().__init__(err.errno, f"cannot write {path}: {why} ({errno.errorcode.get(err.errno, err.errno)})")

    def __str__(self) -> str:
        return self.strerror


def storage_error(path: Path, err: OSError) -> OSError:
    """StorageError for the machine's refusals (disk full, read-only); any other OSError as it is."""
    return StorageError(path, err) if err.errno in _FULL + _NOT_WRITABLE else err


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO], object], binary: bool = False) -> None:
    """write(f) into a temporary file in the same folder, then rename: readers see the old or the new file, never
    half of one (a run's files, checkpoints). The file gets the mode open() would give it (0666 less the umask);
    mkstemp's own is 0600."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise storage_error(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise storage_error(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


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
        atomic_write_text(self.dir / RESULT, json.dumps(_json_safe(result), indent=2, sort_keys=True) + "\n")

    def result(self) -> dict | None:
        path = self.dir / RESULT
        return json.loads(path.read_text()) if path.exists() else None


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
