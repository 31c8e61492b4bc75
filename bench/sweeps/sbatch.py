"""When sbatch refuses a sweep's job array, say which launcher key to change, in one line, instead of submitit's
traceback. sbatch checks a request against the cluster's nodes and partitions at submission, so a request that can
never run (more memory or CPUs than any node has, a partition or GPUs the cluster lacks) is refused there."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# (words in sbatch's error, in lower case; the hydra.launcher keys; what to do). First match wins: sbatch prints the
# precise reason before "Requested node configuration is not available", and "Invalid account or account/partition
# combination" is about the account.
RULES = (
    ("memory", ("mem_gb",), "ask for at most a node's memory"),
    ("cpu count", ("cpus_per_task",), "ask for at most a node's CPUs"),
    ("processors", ("cpus_per_task",), "ask for at most a node's CPUs"),
    ("account", ("additional_parameters.account",), "use an account of yours (sacctmgr show assoc user=$USER)"),
    ("qos", ("additional_parameters.qos",), "use a QOS your account may use"),
    ("partition", ("partition",), "use one of the cluster's partitions, or null for its default one"),
    ("gres", ("gpus_per_node",), "null on a cluster without GPUs, else at most a node's GPUs"),
    ("time limit", ("timeout_min",), "stay within the partition's time limit"),
    ("array", ("array_parallelism",), "fewer runs at once, or a smaller grid (the cluster's MaxArraySize)"),
    ("node configuration is not available", ("mem_gb", "cpus_per_task", "gpus_per_node"), "ask for at most a node"),
    ("fetch config", (), "no slurm.conf: SLURM_CONF unset? locally: make slurm-up; source .slurm/env"),
    ("unable to contact slurm controller", (), "is the cluster up? locally: make slurm-up; source .slurm/env"),
)


def explain(stderr: str, params: dict) -> str:
    """One line from sbatch's error text: its reason, the keys to change with their current values, the nodes."""
    lines = [line.strip().removeprefix("sbatch: error:").strip() for line in stderr.splitlines() if line.strip()]
    reasons = [line for line in lines if not line.lower().startswith("batch job submission failed")] or lines
    words, keys, advice = next((rule for rule in RULES if rule[0] in stderr.lower()), ("", (), "see sbatch's message"))
    reason = next((line for line in lines if words and words in line.lower()), reasons[0] if reasons else "")
    reason = reason.removeprefix("Batch job submission failed:").strip() or "no error text"
    change = f"; change {' or '.join(f'hydra.launcher.{k}={_value(params, k)}' for k in keys)}" if keys else ""
    nodes = nodes_summary() if keys else ""
    return f"sbatch refused the job array: {reason}{change} ({advice}{'; ' + nodes if nodes else ''})"


def _value(params: dict, key: str):
    value = params
    for part in key.split("."):
        value = value.get(part) if hasattr(value, "get") else None
    return "null" if value is None else value


def nodes_summary() -> str:
    """What the cluster offers, from sinfo: e.g. 'partitions debug*: 2 CPUs, 21695 MB, gres (null) a node'."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P %c %m %G"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    rows = sorted({" ".join(line.split()) for line in out.splitlines() if line.strip()})
    parts = []
    for row in rows:
        name, cpus, mem, gres = (row.split() + ["?"] * 4)[:4]
        parts.append(f"{name}: {cpus} CPUs, {mem} MB, gres {gres} a node")
    return ("partitions " + "; ".join(parts)) if parts else ""


@contextlib.contextmanager
def refusals(params: dict) -> Iterator[None]:
    """Around a submission: sbatch's refusal -> SystemExit with one line (Hydra lets SystemExit through untouched).
    submitit prints sbatch's stderr itself before raising; that text goes into the line instead."""
    from submitit.core.utils import FailedJobError

    folder = _submission_folder(params)
    before = _files(folder)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            yield
    except FailedJobError as e:
        refused = explain(str(e) or printed.getvalue(), params)
    except FileNotFoundError as e:
        if "sbatch" not in str(e):
            sys.stderr.write(printed.getvalue())
            raise
        refused = "sbatch not found: no SLURM client here (a local cluster: make slurm-up)"
    except BaseException:
        sys.stderr.write(printed.getvalue())
        raise
    else:
        sys.stderr.write(printed.getvalue())  # nothing was refused: what was printed meanwhile is not ours
        return
    _remove_new(folder, before)
    raise SystemExit(f"error: {refused}")


def _submission_folder(params: dict) -> Path | None:
    """Where submitit writes a submission's pickles and script before sbatch answers: the part of submitit_folder
    before its first %j (sweep/.submitit)."""
    if not params.get("submitit_folder"):
        return None
    from submitit.core.utils import JobPaths

    return Path(JobPaths.get_first_id_independent_folder(str(params["submitit_folder"])))


def _files(folder: Path | None) -> set[Path]:
    return set(folder.rglob("*")) if folder is not None and folder.is_dir() else set()


def _remove_new(folder: Path | None, before: set[Path]) -> None:
    """A refused submission leaves nothing behind: the files submitit wrote for it (pickles, the sbatch script), and
    the folder when it made it."""
    if folder is None:
        return
    for path in sorted(_files(folder) - before, reverse=True):  # files before the folders that hold them
        if not path.is_dir():
            path.unlink(missing_ok=True)
        elif not any(path.iterdir()):
            path.rmdir()
    if not before and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
