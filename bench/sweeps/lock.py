"""Per-run lock: two launches of the same sweep never train the same point at once, whatever launches them.

bench.run takes the lock before training: `run.lock` in the run folder, created atomically (O_CREAT | O_EXCL) and
holding the holder's host, pid and start time; its modification time is the holder's heartbeat, renewed every
HEARTBEAT_S by a thread. A lock is stale, and taken over, when its heartbeat is older than STALE_MIN minutes, whatever
its pid (a pid is evidence of life only while the heartbeat is fresh: a dead holder's pid may have been reused), or
when its holder is a dead process on this host. A run whose lock is held elsewhere is not trained: bench.run returns
{"status": "running elsewhere", ...} and writes nothing into the folder; a single run then exits non-zero with the
holder, a sweep counts the point as skipped (bench.cli), and the boundary search waits for its result.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

from bench.runfolder import LOCK  # noqa: E402, F401  (the run-folder contract)

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
STALE_MIN = 10.0  # minutes without a heartbeat after which another host's lock is taken over
RUNNING_ELSEWHERE = "running elsewhere"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunLock:
    def __init__(self, folder: str | Path, stale_min: float = STALE_MIN, heartbeat_s: float = HEARTBEAT_S):
        self.path = Path(folder) / LOCK
        self.stale_min, self.heartbeat_s = stale_min, heartbeat_s
        self.held = False
        self.holder: dict = {}
        self.age: float | None = None  # the holder's heartbeat age when the lock was found held
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _create(self) -> bool:
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        self.holder = me
        return True

    def _read(self) -> tuple[str, dict, float] | None:
        try:
            text = self.path.read_text()
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:  # being written this instant: a fresh lock
            holder = {}
        return text, holder if isinstance(holder, dict) else {}, age

    def stale(self, holder: dict, age: float) -> bool:
        if age > 60 * self.stale_min:  # no heartbeat for that long: dead, whatever its pid (pids are reused)
            return True
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _alive(holder["pid"])
        return False

    def live_holder(self) -> tuple[dict, float] | None:
        """(holder, heartbeat age) of the lock when a live process holds it (by the rule of `stale`); else None."""
        seen = self._read()
        if seen is None or self.stale(seen[1], seen[2]):
            return None
        return seen[1], seen[2]

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                self._beat = threading.Thread(target=self._heartbeat, daemon=True)
                self._beat.start()
                return True
            seen = self._read()
            if seen is None:
                continue  # released meanwhile: try again
            text, self.holder, age = seen
            self.age = age
            if not self.stale(self.holder, age):
                return False
            log.warning("taking over the stale lock of %s (%s)", self.path.parent, describe(self.holder, age))
            again = self._read()
            if again is not None and again[0] == text:  # still the stale one (not a new holder's)
                self.path.unlink(missing_ok=True)
        return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        seen = self._read()
        if seen is not None and seen[1].get("pid") == os.getpid() and seen[1].get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def describe(holder: dict, age: float | None = None) -> str:
    who = f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}"
    return who + (f", heartbeat {age:.0f} s ago" if age is not None else "")


def locked_run(cfg, run_dir=None) -> dict:
    """bench.train.run under the run folder's lock; a run locked by another live process is skipped."""
    from bench.config import validate
    from bench.train import output_dir
    from bench.train import run as train

    typed = validate(cfg)  # a bad config makes no folder
    folder = Path(run_dir or output_dir())
    with RunLock(folder) as lock:
        if lock.held:
            return train(cfg, folder)
    return not_ours(folder, lock, typed.force)


def not_ours(folder: Path, lock: RunLock, force: bool) -> dict:
    """The result of a run whose lock another process holds: its result if it finished meanwhile (unless force),
    otherwise {"status": "running elsewhere"} (nothing is written into the folder)."""
    from bench.runfolder import FINISHED

    done = _result(folder)
    if done.get("status") in FINISHED and not force:
        return done  # it finished elsewhere meanwhile
    result = {"status": RUNNING_ELSEWHERE, "holder": lock.holder, "heartbeat_age_s": lock.age, "run_dir": str(folder)}
    log.warning(elsewhere_line(result))
    return result


def elsewhere_line(result: dict) -> str:
    """One line for a run skipped because another process holds its lock."""
    holder = describe(result.get("holder") or {}, result.get("heartbeat_age_s"))
    return f"{result.get('run_dir')}: running elsewhere ({holder}); skipped, not trained"


def _result(folder: Path) -> dict:
    try:
        result = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return {}
    return result if isinstance(result, dict) else {}


class Incomplete(Exception):
    """A sweep ended with points skipped because another launch holds them: not complete (exit status 1)."""


def check_complete(returns) -> None:
    """Say on the console how many of a sweep's points were skipped as running elsewhere (JobReturn outcomes, see
    bench.Outcome), and raise Incomplete when any was: the sweep is not complete until that launch ends them."""
    from bench import outcome

    flat = [r for batch in returns or [] for r in (batch if isinstance(batch, list) else [batch])]
    skipped = [r for r in flat if outcome(r) == RUNNING_ELSEWHERE]
    if skipped:
        counted = f"{len(skipped)} of {len(flat)} points skipped as running elsewhere"
        log.warning("%s (another launch holds their lock)", counted)
        raise Incomplete(
            f"{counted} (first: {' '.join(skipped[0].overrides)}): the sweep is not complete; the same command, once"
            " the other launch ends, finishes it"
        )
