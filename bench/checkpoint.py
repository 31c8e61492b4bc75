"""Checkpoints: a run's full state in its folder, so that a preempted, requeued or relaunched run resumes exactly.

One explicit protocol: the run names its stateful components (`Trainer.components()`: model, optimizer,
sampler, augmentation, schedule, measurer, running means, progress, global RNG), each with `state_dict()` /
`load_state_dict()`, and the checkpoint is

    {"format": FORMAT, "run_identity": ..., "step": ..., "components": {name: state_dict}}

holding only tensors and plain Python values (read back with `torch.load(weights_only=True)`). A component missing
from the checkpoint, or one the checkpoint has and the Trainer does not, is an error: nothing is found by a scan.

On disk, checkpoint.pt is one header line `warmup-bench-checkpoint <format> <sha256> <size>` followed by the
torch-serialized payload; the checksum and size are verified before anything is loaded. A damaged or truncated
checkpoint is never loaded: the run starts again from step 0, and result.json records why
("checkpoint_discarded"). A checkpoint of another format (e.g. format 1, a bare torch file) is refused in one line.
A checkpoint of another run identity is refused too. Written atomically every `checkpoint_every` steps and at the
pre-timeout signal (SIGUSR2) or SIGTERM.

A run folder whose result.json says completed or diverged is finished: launching it again returns that result
without building anything (the sweep resumes only the rest); `force=true` deletes its outputs and trains anew.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import torch

from bench.errors import ConfigError
from bench.runfolder import CHECKPOINT, METRICS, atomic_write
from bench.runfolder.check import IdentityMismatch
from bench.signals import SIGNALS, PreemptionSignal

log = logging.getLogger(__name__)

FORMAT = 2
MAGIC = b"warmup-bench-checkpoint"
_HEADER_MAX = 200  # bytes: the header line is far shorter


class CheckpointError(RuntimeError):
    """checkpoint.pt exists but cannot be used (another format, another run, components that do not match)."""


class CheckpointDamaged(CheckpointError):
    """checkpoint.pt fails its checksum or is truncated: never loaded; the run starts over."""


# --- the global RNG: a component like the others ---------------------------------------------------------------


class GlobalRNG:
    """torch's global CPU generator and every CUDA device's."""

    def state_dict(self) -> dict:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


# --- save and restore ------------------------------------------------------------------------------------------


def state(components: dict, identity: str, step: int) -> dict:
    """The checkpoint of a run: its named components' state_dicts."""
    return {
        "format": FORMAT,
        "run_identity": identity,
        "step": step,
        "components": {name: obj.state_dict() for name, obj in components.items()},
    }


def restore(components: dict, ckpt: dict, identity: str, path: Path) -> int:
    """Load each component's state; returns the checkpoint's step."""

    saved = ckpt["components"]
    if set(saved) != set(components):
        missing, extra = sorted(set(components) - set(saved)), sorted(set(saved) - set(components))
        raise CheckpointError(f"its components do not match this run's (missing {missing}, unknown {extra})")
    if identity and ckpt["run_identity"] != identity:
        raise IdentityMismatch(
            f"{path} is of run {ckpt['run_identity']}, not of this config "
            f"({identity}): delete it, use a new folder, or force=true to start over"
        )
    for name, obj in components.items():
        obj.load_state_dict(saved[name])
    return ckpt["step"]


def encode(payload: dict) -> bytes:
    """Header line (format, sha256 and size of the payload) + the torch-serialized payload."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    header = b"%s %d %s %d\n" % (MAGIC, FORMAT, hashlib.sha256(body).hexdigest().encode(), len(body))
    return header + body


def decode(data: bytes, path: Path) -> dict:
    """The payload of checkpoint bytes, verified: CheckpointDamaged when truncated or altered, CheckpointError
    when of another format."""
    if data.startswith(b"PK\x03\x04"):  # a bare torch.save zip file: format 1
        raise CheckpointError(f"{path}: format 1 (an older harness); this one reads format {FORMAT}: {_AGAIN}")
    header, sep, body = data[:_HEADER_MAX].partition(b"\n")
    fields = header.split(b" ")
    if not sep or len(fields) != 4 or fields[0] != MAGIC:
        raise CheckpointDamaged(f"no valid header ({len(data)} bytes)")
    if fields[1] != str(FORMAT).encode():
        raise CheckpointError(f"{path}: format {fields[1].decode(errors='replace')}; this one reads {FORMAT}: {_AGAIN}")
    body = data[len(header) + 1 :]
    try:
        size = int(fields[3])
    except ValueError:
        raise CheckpointDamaged("unreadable size in its header") from None
    if len(body) < size:
        raise CheckpointDamaged(f"truncated ({len(body)} of {size} payload bytes)")
    if len(body) > size:
        raise CheckpointDamaged(f"{len(body) - size} bytes after its {size}-byte payload (appended to the file)")
    if hashlib.sha256(body).hexdigest().encode() != fields[2]:
        raise CheckpointDamaged("checksum mismatch (the file was altered or damaged)")
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)


_AGAIN = "delete it, or force=true, to start that run over"


def read(path: Path) -> dict:
    """The verified payload of a checkpoint file (for tools and tests)."""
    path = Path(path)
    return decode(path.read_bytes(), path)


def save(path: Path, components: dict, identity: str, step: int) -> None:
    """Atomically: a reader sees the old or the new checkpoint."""
    data = encode(state(components, identity, step))
    atomic_write(path, lambda f: f.write(data), binary=True)


def load(path: Path, components: dict, identity: str) -> int:
    """Restore the components from checkpoint.pt; returns its step. CheckpointDamaged: not loaded, nothing changed."""
    ckpt = decode(path.read_bytes(), path)
    try:
        return restore(components, ckpt, identity, path)
    except (CheckpointError, ConfigError):  # already one line: another run's checkpoint, components missing
        raise
    except Exception as e:  # a key or shape that does not fit this run's components
        why = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{path}: cannot resume from it ({type(e).__name__}: {why}); {_AGAIN}") from None


# --- the step loop's hooks -------------------------------------------------------------------------------------


class Checkpointer:
    """Resume at the start of training; after each step, save every `every` steps (not at the last, `total_steps`),
    and on the pre-timeout signal or SIGTERM save, then hand the signal on.

    Explicit inputs: the run folder, `components` (a callable returning the named stateful components; called at
    each save and load, so a component replaced after construction is still the one saved), the run identity, and
    `records` (result.json's run-level records: a discarded checkpoint is noted there)."""

    def __init__(self, run_dir: Path, components, identity: str, every: int, total_steps: int, records: dict):
        self.dir = Path(run_dir)
        self.path = self.dir / CHECKPOINT
        self.components, self.identity = components, identity
        self.every, self.total_steps = every, total_steps
        self.records = records

    def resume(self) -> int:
        """The step to continue from (0: no usable checkpoint, a fresh start)."""
        if not self.path.exists():
            (self.dir / METRICS).unlink(missing_ok=True)  # a past attempt's rows: this one restarts
            return 0
        try:
            step = load(self.path, self.components(), self.identity)
        except CheckpointDamaged as e:
            reason = f"{CHECKPOINT} {e}"
            log.warning("%s: %s; not loaded, the run starts again from step 0", self.dir, reason)
            self.records["checkpoint_discarded"] = reason  # result.json says so
            self.path.unlink(missing_ok=True)
            (self.dir / METRICS).unlink(missing_ok=True)
            return 0
        log.info("resumed from %s at step %d", self.path, step)
        return step

    def save(self, step: int) -> None:
        save(self.path, self.components(), self.identity, step)

    def periodic(self, step: int) -> bool:
        """A checkpoint is due at this step: every `every` steps, not at the last."""
        return bool(self.every and step % self.every == 0 and step < self.total_steps)

    @staticmethod
    def signalled() -> list[PreemptionSignal]:
        """The stop signals received since they were last handed on."""
        return [s for s in SIGNALS if s.received]

    def after_step(self, step: int, signalled: list[PreemptionSignal] | None = None) -> None:
        """Save when periodic or signalled (`signalled`: the caller's earlier reading, which it prepared the state
        for; a signal arriving after it is handled at the next step), then hand the signals on."""
        signalled = self.signalled() if signalled is None else signalled
        if self.periodic(step) or signalled:
            self.save(step)
        self.hand_on(signalled, f"checkpointed at step {step}")

    @staticmethod
    def hand_on(signalled: list[PreemptionSignal], done: str) -> None:
        """Once checkpointed (`done` says what was): hand each signal on to the handler that was there before."""
        for sig in signalled:
            log.warning("%s on %s; handing the signal on", done, sig.name)
            sig.forward()
