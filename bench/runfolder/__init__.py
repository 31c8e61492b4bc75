"""The run-folder contract: what a run leaves in its folder and what each result key means. Torch-free.

Both `bench` (which writes run folders) and `analysis` (which reads them) import this module, and `analysis` imports
nothing else from `bench`. It imports neither torch, Hydra nor bench.config at import time (Hydra's public
override parser is imported inside `point_overrides` only), so that `python -m analysis status` runs anywhere.

Two names, two meanings: a run's *identity* (`run_identity`) is the hash of its resolved config less the keys that do
not change results; a grid point's *folder name* (`run_id`) comes from the overrides that define it
(`point_overrides`), and `point_folder` is the folder Hydra gives a composed point. The rest of the run folder lives
beside this module: check.py (is a folder this config's run?), store.py (writing a run's files, finishing it),
names.py (the ${run_id:...} resolver). `trainable`, the phase rule, is here: the boundary search and analysis share it.

Files of a run folder:
  config.yaml      the resolved config of the run
  metrics.csv      one row per logged step (step, lr, train_loss, train_acc, test_loss, test_acc, sharpness, ...)
  result.json      written last: its presence means the run has ended (status completed | diverged | failed)
  checkpoint.pt    the run's full state while it trains (bench/checkpoint.py); kept after the run ends
  traceback.txt    a failed run's traceback (or the end of its job's log when the job died)
  run.lock         held while a process trains the run (bench/sweeps/lock.py)
  .hydra/overrides.yaml  Hydra's record of the command-line overrides that define the run's grid point

result.json carries `format` (FORMAT below) and the keys of RESULT_KEYS, each with its type and one meaning; a run
may add keys of its own (analysis keeps them as columns). `check_result` names the required keys that are missing
and the known keys of the wrong type.

Every file of a run folder (and analysis's caches) is written by the one helper `atomic_write`: a temporary file in
the same folder, then a rename, with the mode open() would give (0666 less the umask).
"""

from __future__ import annotations

import enum
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

# --- file names ----------------------------------------------------------------------------------------------------
CONFIG = "config.yaml"
METRICS = "metrics.csv"
RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"
TRACEBACK = "traceback.txt"
LOCK = "run.lock"
OVERRIDES = ".hydra/overrides.yaml"
MULTIRUN = "multirun.yaml"  # in a sweep folder: Hydra's record of the sweep (its grid)
RUN_FILES = (CONFIG, RESULT, CHECKPOINT)  # a folder holding any of them holds a run


def sweep_evidence(folder: Path) -> str | None:
    """What makes a folder a sweep's (its multirun.yaml, or a subfolder holding a run), or None: no single run may be
    written there (its files would mix with the sweep's, and analysis would read the sweep as one run)."""
    folder = Path(folder)
    if (folder / MULTIRUN).is_file():
        return f"it holds {MULTIRUN}"
    try:
        subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return None
    held = next((p for p in sorted(subfolders) if any((p / name).is_file() for name in RUN_FILES)), None)
    return f"its subfolder {held.name} holds a run" if held else None


# --- statuses ------------------------------------------------------------------------------------------------------
class Status(str, enum.Enum):
    """result.json's status."""

    COMPLETED = "completed"  # trained for all its steps
    DIVERGED = "diverged"  # stopped when the loss exceeded diverge_factor x the initial loss (or went non-finite)
    FAILED = "failed"  # crashed; `error` says why, traceback.txt shows where


STATUSES = tuple(s.value for s in Status)
FINISHED = (Status.COMPLETED.value, Status.DIVERGED.value)  # a failed run is not finished: launching again retries


# --- result schema -------------------------------------------------------------------------------------------------
FORMAT = 1  # result.json's format; a folder written before formats existed has none (read as format 1)

NUM = (int, float, str)  # a number; +-inf is written "inf" / "-inf" and NaN null (JSON has neither)
INT, FLOAT, STR, BOOL = (int,), NUM, (str,), (bool,)

# key -> (types, meaning); None is allowed for every key (not measured / not applicable)
RESULT_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "format": (INT, "the format of this result.json (FORMAT)"),
    "status": (STR, "completed | diverged | failed (Status)"),
    "stop_step": (INT, "the last step trained (steps for a completed run)"),
    "diverged_step": (INT, "the step at which the loss diverged; null when it did not"),
    "initial_loss": (FLOAT, "the training loss at theta0, on the first minibatch"),
    "final_train_loss": (
        FLOAT,
        "training loss (mean over the steps since the last evaluation) at the end; NaN unless completed",
    ),
    "final_train_acc": (FLOAT, "training accuracy, likewise"),
    "last_train_acc": (
        FLOAT,
        "accuracy on the last training minibatch, at the parameters before its update (the authors' failure rule "
        "for the Adam family: bench.runfolder.trainable rule=authors); absent in runs written before it existed",
    ),
    "final_test_loss": (FLOAT, "test loss at the last evaluation of a completed run"),
    "final_test_acc": (FLOAT, "test accuracy at the last evaluation of a completed run"),
    "best_test_acc": (FLOAT, "the highest test accuracy over all evaluations"),
    "best_test_loss": (FLOAT, "the lowest test loss over all evaluations"),
    "num_params": (INT, "the model's trainable parameters"),
    "num_classes": (INT, "the dataset's classes (chance accuracy is 1 / num_classes)"),
    "lr": (FLOAT, "the absolute eta_trgt: optimizer.lr times the unit (1 / lambda0 when lr_unit=inverse_sharpness)"),
    "seed": (INT, "the run's seed"),
    "warmup_steps": (INT, "T_wrm that schedule.warmup_fraction resolved to: max(1, fraction x steps rounded)"),
    "device": (STR, "the torch device it ran on (cpu, cuda:0, ...)"),
    "wall_time_s": (FLOAT, "seconds from start to result, this launch"),
    "run_identity": (STR, "hash of the resolved config less NON_RESULT_KEYS (run_identity)"),
    "git_sha": (STR, "the harness's commit ('+dirty' with uncommitted changes; 'unknown' outside git)"),
    "python": (STR, "Python version"),
    "torch": (STR, "torch version"),
    "platform": (STR, "platform.platform()"),
    "hostname": (STR, "the machine's name"),
    "lambda0": (FLOAT, "the sharpness lambda^H at initialization (docs/paper.md section 1)"),
    "lambda0_converged": (BOOL, "whether the Lanczos iterations of lambda0 converged"),
    "eta_c": (FLOAT, "catapult: the absolute rate where the first step's loss rises (docs/paper.md section 3)"),
    "eta_c_lower": (FLOAT, "catapult: the largest absolute learning rate tried whose loss did not rise"),
    "catapult_outcome": (STR, "catapult: how the search ended"),
    "catapult_forward_passes": (INT, "catapult: forward passes spent by the search(es)"),
    "catapult_searches": (INT, "persistent catapult: searches run"),
    "T_reach": (FLOAT, "catapult: steps the warmup needs to reach eta_trgt from eta_c (docs/paper.md section 3)"),
    "T_save": (FLOAT, "catapult: warmup steps saved, less the search's cost"),
    "rayleigh_g0": (FLOAT, "R(g0) = g0'H g0 / |g0|^2 at theta0 on the catapult's search batch"),
    "eta_rayleigh": (
        FLOAT,
        "2 / R(g0): a second-order estimate of the rate above which one step along -g0 raises the loss (exact on "
        "a quadratic only; the measured first rise lies at 0.6-3.7x of it on FCN-4-256, up to 15x at width 16: "
        "docs/paper.md section 3); null for the Adam family (eta_rayleigh_null says why)",
    ),
    "eta_rayleigh_null": (STR, "why eta_rayleigh is null: the optimizer's step is not along g0 (the Adam family)"),
    "checkpoint_discarded": (STR, "why a damaged checkpoint was discarded (the run started again from step 0)"),
    "precision": (STR, "fp32 | tf32 | bf16 (bench/numerics.py)"),
    "deterministic": (BOOL, "whether deterministic algorithms were enforced"),
    "compile": (BOOL, "whether the model ran under torch.compile"),
    "device_name": (STR, "the accelerator's (or CPU's) name"),
    "tf32_matmul": (BOOL, "whether matmuls used TF32"),
    "tf32_cudnn": (BOOL, "whether cuDNN convolutions used TF32"),
    "autocast_dtype": (STR, "the autocast dtype (bfloat16) or null"),
    "cudnn_benchmark": (BOOL, "whether cuDNN benchmark mode was on"),
    "packed_with": (INT, "the number of runs trained together in one packed job (bench/ensemble.py)"),
    "error": (STR, "a failed run: one line saying why"),
    "error_type": (STR, "a failed run: exception | out_of_memory | disk_full | read_only | job_died"),
}
REQUIRED = {  # keys every result of that status has (format is absent in folders written before it existed)
    "completed": ("status", "stop_step", "lr", "seed"),
    "diverged": ("status", "stop_step", "lr", "seed"),
    "failed": ("status", "error"),
}
NUMBERS = tuple(k for k, (types, _) in RESULT_KEYS.items() if types in (INT, FLOAT) and k != "format")
NONFINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, str) and types == FLOAT:
        return value in NONFINITE
    if isinstance(value, float) and types == INT:
        return value.is_integer()
    return isinstance(value, types)


def check_result(result: Any) -> list[str]:
    """What is wrong with a result.json's content against the schema (empty: nothing): a status that is not one,
    required keys missing, known keys of the wrong type."""
    if not isinstance(result, dict):
        return ["not a mapping"]
    status = result.get("status")
    if status not in STATUSES:
        return [f"status {status!r} is not one of {', '.join(STATUSES)}"]
    problems = []
    missing = [k for k in REQUIRED[status] if k not in result]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    wrong = [k for k, (types, _) in RESULT_KEYS.items() if k in result and not _type_ok(result[k], types)]
    if wrong:
        problems.append("wrong type: " + ", ".join(f"{k}={result[k]!r}" for k in wrong))
    if isinstance(result.get("format"), int) and result["format"] > FORMAT:
        problems.append(f"format {result['format']} is newer than this harness's {FORMAT}")
    return problems


# --- the phase rule: which runs trained (the boundary search and the phase diagrams) ------------------------------
# the failure rules of `trainable`, the default first
RULES = {
    "test": "final test accuracy >= 1.5 / num_classes",
    "authors": "Adam family: last training minibatch's accuracy >= 1.5 / num_classes; SGD: no NaN/inf loss",
}


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule {rule!r}: must be one of {', '.join(RULES)}")
    return rule


def trainable(runs, rule: str = "test"):
    """Completed and trained, by `rule` (RULES):
    - test (the default): final test accuracy at least 1.5 / num_classes, whatever the optimizer;
    - authors (the authors' code): the Adam family (runs with optimizer.b1) fails when the last training minibatch's
      accuracy (last_train_acc) is below 1.5 / num_classes; SGD only on a NaN/inf loss, so every completed SGD run
      trains. A run written before last_train_acc existed is judged on final_train_acc (its mean since the last
      evaluation) instead.
    A diverged run fails under both: the harness stopped it (NaN/inf, or diverge_factor x the initial loss; with
    diverge_factor=inf only NaN/inf, the authors' criterion exactly). `runs`: a table of results (pandas; imported
    here only, so that the contract imports without it); returns one bool per run."""
    import pandas as pd

    def column_or_nan(key: str) -> pd.Series:
        return runs[key] if key in runs else pd.Series(float("nan"), index=runs.index)

    chance = 1.5 / pd.to_numeric(column_or_nan("num_classes"), errors="coerce")
    completed = runs["status"] == "completed"
    if check_rule(rule) == "test":
        return completed & (pd.to_numeric(column_or_nan("final_test_acc"), errors="coerce") >= chance)
    last = pd.to_numeric(column_or_nan("last_train_acc"), errors="coerce")
    last = last.fillna(pd.to_numeric(column_or_nan("final_train_acc"), errors="coerce"))
    return completed & (column_or_nan("optimizer.b1").isna() | (last >= chance))


# --- the one atomic writer -----------------------------------------------------------------------------------------
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
    half of one (a run's files, checkpoints, analysis caches). The file gets the mode open() would give it (0666
    less the umask); mkstemp's own is 0600."""
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


# --- run identity --------------------------------------------------------------------------------------------------
# keys that do not change a run's results (conf/config.yaml's hydra exclude_keys repeats it; a test keeps them equal)
NON_RESULT_KEYS = (
    "experiment",
    "name",
    "force",
    "threads",
    "checkpoint_every",
    "eval_batch_size",
    "sync_every",
    "logger",
    "objective",
)


def canonical(value: Any) -> Any:
    """Numbers as floats (1 and 1.0 are the same learning rate); containers recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def result_keys(cfg) -> dict:
    """The resolved config as plain values, without the hydra node and the keys that do not change results."""
    from omegaconf import OmegaConf

    keys = [k for k in cfg if k != "hydra" and k not in NON_RESULT_KEYS]
    if not OmegaConf.is_config(cfg):
        return canonical({k: cfg[k] for k in keys})

    def resolved(k):  # node by node, so that the hydra node (with its runtime-only values) is never resolved
        node = cfg._get_node(k)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else cfg[k]

    return canonical({k: resolved(k) for k in keys})


def run_identity(cfg) -> str:
    """The hash of the config's result keys (16 hex digits): result.json's and checkpoint.pt's run_identity."""
    text = json.dumps(result_keys(cfg), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unproven_result(run_dir: Path) -> str | None:
    """Why the folder's result.json is not a result of its config.yaml (its run_identity is another config's: the
    config was edited, or the result copied, after the run), or None: it is, or either file is missing or unreadable,
    or the result predates run identities. Such a result proves nothing: it is refused and excluded from analysis."""
    from omegaconf import OmegaConf

    try:
        stored = json.loads((Path(run_dir) / RESULT).read_text()).get("run_identity")
        config = OmegaConf.load(Path(run_dir) / CONFIG)
    except Exception:  # missing, unreadable, not a mapping: other checks name those
        return None
    if not isinstance(stored, str) or not OmegaConf.is_dict(config):
        return None
    own = run_identity(config)
    if stored == own:
        return None
    return f"its result.json is of run {stored}, not of its config.yaml ({own}): config.yaml edited after the run?"


# --- a grid point's folder name, from its overrides ----------------------------------------------------------------
MAX_PREFIX = 100  # characters of the readable part (file names may have 255)
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def _excluded(key: str, exclude: Iterable[str]) -> bool:
    return any(key == e or key.startswith(f"{e}.") for e in exclude)


def _shown(value, written: str) -> str:
    """Numbers the same way however they were written (1, 1.0 -> 1; 0.50 -> 0.5); anything else as written."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return written


def point_overrides(overrides: Iterable[str], exclude: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(key, canonical value, value as shown) of the overrides that define the run, sorted by key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser  # public API; only here (import time)

    exclude = list(exclude or ())
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    out = []
    for o in parsed:
        key = o.key_or_group
        if _excluded(key, exclude):
            continue
        prefix = "~" if o.is_delete() else ""
        value = canonical(o.value())
        out.append((prefix + key, json.dumps(value, sort_keys=True), _shown(value, o.get_value_element_as_str())))
    return sorted(out)


# One name per concept in every output file (status, the phase CSVs and eta_max.csv, boundary.csv, the reference
# tables): a config key as the flattened config names it. A config group chosen on the command line (schedule=cosine)
# is its option's name key (schedule.name), as in load_runs' tables.
CONFIG_GROUPS = ("model", "dataset", "optimizer", "schedule", "logger")


def column(key: str) -> str:
    """The output files' name of an override's key: `schedule` -> `schedule.name`, `optimizer.lr` as it is."""
    return f"{key}.name" if key in CONFIG_GROUPS else key


def run_id(overrides: Iterable[str], exclude: Iterable[str] = ()) -> str:
    """The folder name of the run these task overrides define: `lr=0.5,warmup_steps=64_1f3a9c0e`."""
    ident = point_overrides(overrides, exclude)
    digest = hashlib.sha256("\n".join(f"{k}={v}" for k, v, _ in ident).encode()).hexdigest()[:8]
    readable = ",".join(f"{k.rsplit('.', 1)[-1]}={shown}" for k, _, shown in ident) or "default"
    readable = _UNSAFE.sub("_", readable)[:MAX_PREFIX]
    return f"{readable}_{digest}"


def point_folder(cfg, multirun: bool | None = None) -> Path:
    """The folder Hydra gives the point of this composed config (with its hydra node): hydra.sweep.dir/subdir in a
    multirun, hydra.run.dir otherwise (multirun=None: as hydra.mode says). Every caller names a folder this way."""
    from omegaconf import OmegaConf

    if multirun is None:
        multirun = str(OmegaConf.select(cfg, "hydra.mode")) == "RunMode.MULTIRUN"
    if multirun:
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    return Path(str(cfg.hydra.run.dir))
