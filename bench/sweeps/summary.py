"""How a sweep ended, in one line: its points completed / diverged / failed / skipped (running elsewhere) / unfinished,
and where to look. A sweep with a failed point, or stopped by a signal, ends with SweepEnded (launch.py prints its
one line, exit status 1) instead of Hydra's or submitit's traceback; its other points have run (or were stopped
cleanly), and `python -m analysis status SWEEP_DIR` shows each one."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus

from bench.sweeps.lock import RUNNING_ELSEWHERE
from bench.runfolder import RESULT, STATUSES

log = logging.getLogger(__name__)

OUTCOMES = ("completed", "diverged", "failed", "skipped", "unfinished")  # unfinished: not run, or stopped


class SweepEnded(Exception):
    """A sweep ended with failed points or was stopped: one line, the summary."""


def skipped(run_dir: Path, ret: JobReturn | None) -> bool:
    """The point was not trained because another launch holds it: the job's return says so (bench.Outcome), else
    the point's log does (Hydra's job log, launch.log, where bench.sweeps.lock says so: a launch whose returns are lost)."""
    from bench import outcome as run_outcome

    if (status := run_outcome(ret)) is not None:
        return status == RUNNING_ELSEWHERE
    try:
        return any(RUNNING_ELSEWHERE in line for line in (run_dir / "launch.log").read_text().splitlines()[-3:])
    except OSError:
        return False


def outcome(run_dir: Path | None, ret: JobReturn | None = None) -> str:
    """One of OUTCOMES: result.json's status when the folder has one (written last), else from the job's return."""
    if run_dir is not None:
        try:
            status = json.loads((Path(run_dir) / RESULT).read_text()).get("status")
            if status in STATUSES:
                return status
        except (OSError, ValueError, AttributeError):
            pass
    if ret is not None and ret.status == JobStatus.FAILED:
        return "failed"
    return "skipped" if run_dir is not None and skipped(Path(run_dir), ret) else "unfinished"


def outcomes(run_dirs: Sequence[Path | None], returns: dict | None = None) -> Counter:
    """How many points ended each way (OUTCOMES); `returns`: run folder -> the JobReturn of this launch."""
    returns = returns or {}
    return Counter(outcome(d, returns.get(d)) for d in run_dirs)


def summary(sweep_dir: Path, counts: Counter) -> str:
    """'N points: a completed, b diverged, c failed, d skipped (running elsewhere), e unfinished; see: ...'."""
    parts = ", ".join(f"{counts[o]} {o}" + (f" ({RUNNING_ELSEWHERE})" if o == "skipped" else "") for o in OUTCOMES)
    return f"{sum(counts.values())} points: {parts}; see: python -m analysis status {sweep_dir}"
