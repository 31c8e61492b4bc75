"""Checkpoints: a run's full state in its folder, so that a preempted, requeued or relaunched run resumes exactly.

checkpoint.pt holds the model, the optimizer (its state_dict covers momenta and any per-parameter state), every RNG
(torch's global and CUDA generators, and every torch.Generator or stateful object the Trainer holds, e.g. the
sampler with its data-order generator), the step, the metrics rows so far, the initial loss, the running sums of the
training metrics and Trainer.extras. It is written atomically (temporary file + rename) every `checkpoint_every`
steps and at the scheduler's pre-timeout signal, holds only tensors and plain Python values, and is read back with
`torch.load(weights_only=True)`. A resumed run's metrics equal those of the same run left alone.

A run folder whose result.json says completed or diverged is finished: launching it again returns that result
without building anything (the sweep resumes only the rest); `force=true` deletes its outputs and trains anew.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import torch

from bench.store import RESULT, RunStore, atomic_write

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
TRACEBACK = "traceback.txt"
FINISHED = ("completed", "diverged")  # a failed run is not finished: launching it again retries it
FORMAT = 1
# Trainer attributes that are not run state (rebuilt from the config) although they have a state_dict
_NOT_STATE = {"data", "store", "cfg"}


class CheckpointError(RuntimeError):
    """checkpoint.pt exists but cannot be used."""


# --- the run folder before training ----------------------------------------------------------------------------


def finished_result(store: RunStore, force: bool) -> dict | None:
    """The result of a finished run in this folder (then the caller skips it), or None after clearing what a new
    attempt must not see: everything on force=true, a failed attempt's result.json and traceback otherwise (its
    checkpoint stays, so that the retry resumes)."""
    result = _read_result(store)
    if result is not None and result.get("status") in FINISHED and not force:
        log.info("%s: already %s (result.json), skipped; force=true reruns it", store.dir, result["status"])
        return result
    stale = [RESULT, TRACEBACK] + ([CHECKPOINT] if force else [])
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


# --- save and restore ------------------------------------------------------------------------------------------


def _stateful(trainer) -> dict[str, Any]:
    """The Trainer's attributes that carry state: generators and objects with state_dict/load_state_dict."""
    found = {}
    for name, value in vars(trainer).items():
        if name in _NOT_STATE or name.startswith("_"):
            continue
        if isinstance(value, torch.Generator) or (hasattr(value, "state_dict") and hasattr(value, "load_state_dict")):
            found[name] = value
    return found


def _plain(value: Any) -> Any:
    """numpy scalars and the like -> Python numbers, so that weights_only loading accepts them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if not isinstance(value, torch.Tensor) and hasattr(value, "item"):
        return value.item()
    return value


def state(trainer) -> dict:
    objects = {}
    for name, obj in _stateful(trainer).items():
        objects[name] = obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()
    sums = (trainer._loss_sum, trainer._correct, trainer._seen, trainer._steps_since_eval)
    return {
        "format": FORMAT,
        "step": trainer.step,
        "objects": objects,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rows": _plain(list(trainer.rows.values())),
        "initial_loss": trainer.initial_loss,
        "sums": [s.detach().cpu() if isinstance(s, torch.Tensor) else s for s in sums],
        "extras": _plain(trainer.extras),
    }


def restore(trainer, ckpt: dict) -> None:
    objects = _stateful(trainer)
    missing = sorted(set(objects) - set(ckpt["objects"]))
    if ckpt.get("format") != FORMAT or missing:
        raise CheckpointError(f"format {ckpt.get('format')} lacks {', '.join(missing) or 'nothing'}")
    for name, obj in objects.items():
        saved = ckpt["objects"][name]
        obj.set_state(saved) if isinstance(obj, torch.Generator) else obj.load_state_dict(saved)
    torch.set_rng_state(ckpt["torch_rng"])
    if ckpt["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    trainer.step = ckpt["step"]
    trainer.rows = {row["step"]: dict(row) for row in ckpt["rows"]}
    trainer.initial_loss = ckpt["initial_loss"]
    loss_sum, n_correct, seen, since = ckpt["sums"]
    if isinstance(n_correct, torch.Tensor):
        n_correct = n_correct.to(trainer.device)
    trainer._loss_sum, trainer._correct, trainer._seen, trainer._steps_since_eval = loss_sum, n_correct, seen, since
    trainer.extras.update(ckpt["extras"])


def save(trainer, path: Path) -> None:
    """Atomically: a reader sees the old or the new checkpoint."""
    atomic_write(path, lambda f: torch.save(state(trainer), f), binary=True)


def load(trainer, path: Path) -> None:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        restore(trainer, ckpt)
    except Exception as e:
        why = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{path}: cannot resume from it ({type(e).__name__}: {why}); force=true starts over"
        ) from e


# --- the step loop's hooks -------------------------------------------------------------------------------------


class Checkpointer:
    """Resume at the start of Trainer.train(); after each step, save every `checkpoint_every` steps, and on the
    pre-timeout signal save, then hand the signal on (submitit then requeues the job and exits)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.path = trainer.store.dir / CHECKPOINT
        self.every = trainer.cfg.checkpoint_every

    def resume(self) -> None:
        if self.path.exists():
            load(self.trainer, self.path)
            log.info("resumed from %s at step %d", self.path, self.trainer.step)

    def after_step(self, step: int) -> None:
        periodic = self.every and step % self.every == 0 and step < self.trainer.cfg.steps
        if periodic or PREEMPTION.received:
            save(self.trainer, self.path)
        if PREEMPTION.received:
            log.warning("checkpointed at step %d on %s; handing the signal on", step, PREEMPTION.name)
            PREEMPTION.forward()


class PreemptionSignal:
    """The scheduler's pre-timeout / preemption signal (SIGUSR2: submitit asks SLURM for it before the time limit,
    and `scancel --signal=USR2` sends it). Arriving mid-step, it only sets a flag; the step loop checkpoints at the
    end of the step and then calls the handler that was there before (submitit's, which requeues the job and exits;
    without one, the default action, which ends the process)."""

    def __init__(self, signum: int = signal.SIGUSR2):
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.received = False
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> PreemptionSignal:
        self.received = False
        try:
            self.previous = signal.signal(self.signum, self._note)
            self.installed = True
        except ValueError:  # not the main thread: signals are not ours to handle
            self.installed = False
        return self

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(self.signum, self.previous if self.previous is not None else signal.SIG_DFL)
            self.installed = False

    def _note(self, signum: int, frame) -> None:
        self.received = True

    def forward(self) -> None:
        self.received = False
        previous = self.previous if self.previous is not None else signal.SIG_DFL
        self.__exit__()
        if callable(previous):
            previous(self.signum, None)
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), self.signum)


PREEMPTION = PreemptionSignal()
