"""Packed runs: K grid points that share a model architecture and batch size trained in one process, the forward and
backward of all K batched into one with torch.func (`functional_call` under `vmap` over stacked parameters).

Each member is an ordinary `Trainer` (bench/train.py) with its own model parameters, optimizer and its state,
schedule, sampler (data order), augmentation, divergence check, metrics, checkpoint and run folder. A step of the
pack: every active member draws its minibatch and sets its rate (`Trainer.next_batch`); the K parameter sets are
stacked (`torch.stack`, differentiable: the gradients land in each member's own `.grad`), one vmapped forward gives
the K outputs, the sum of the K losses is back-propagated (member k's gradient is that of its own loss alone), and
each member finishes its step as it would alone (`Trainer.update`: its own optimizer step, its loss left unread on
the device), then the per-step code of `Trainer.train` (`Trainer.end_step`: the reads every `sync_every` steps,
divergence, evaluation, checkpoint). Each member's run folder is written by its `bench.lifecycle.Lifecycle`, as a run
alone. So each run folder holds what the same point trained alone writes, up to the order of float sums in the
batched kernels: small layers sum alike (the tests' FCN-2-16: metrics within 2e-7 relative over 600 steps; checked to
1e-5), larger ones differ by rounding from the first step and training amplifies it, the most near the stability
boundary (CPU, FCN-4-512, K = 4, benchmarks/packing_drift.py: train loss up to 2% / 3% / 10% apart at 256 / 1000 /
2000 steps, test accuracy up to 0.005). Compare packed and unpacked results as one compares seeds, not bit for bit.
A member that diverges (with stop_on_divergence) or reaches its last step leaves the pack and writes its result.json;
the others go on.

Never packed (refused in one line, before anything is computed): points whose model, dataset, batch size, loss,
device or numerics differ; `measure.every` > 0 (sharpness measurements are per-member work that packing cannot
batch); a warmup method that says so (`not_packed`: the catapults, a forward-pass search per member); compile=true
(not yet).

The launchers' grouping (hydra.launcher.ensemble=K, bench/sweeps/packs.py) calls `pack_key` to group a sweep's points
and
`run_packed` with each group's configs and run folders.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.func import functional_call, vmap

from bench import checkpoint
from bench.config import Config, validate
from bench.errors import ConfigError
from bench.lifecycle import Lifecycle
from bench.optim.warmup import METHODS
from bench.runfolder.check import check_run_folder
from bench.signals import STOP_SIGNALS
from bench.train import Trainer

log = logging.getLogger(__name__)

# keys every member of a pack shares (the rest: optimizer, schedule, seed, steps, eval_every, ... may differ)
SHARED = ("model", "dataset", "batch_size", "loss", "device", "precision", "deterministic", "threads")
PER_MEMBER = ("dataset.flip", "dataset.crop_padding", "dataset.mixup")  # augmentation: each member its own


def not_packable(cfg: Config) -> str | None:
    """Why this point is never packed (one line), or None."""
    if cfg.measure.every:
        return f"measure.every={cfg.measure.every}: runs that measure the sharpness are never packed"
    if why := METHODS[cfg.schedule.name].not_packed:  # e.g. a search at theta0 per member (the catapults)
        return f"schedule={cfg.schedule.name}: {why}"
    if cfg.compile:
        return "compile=true: packed runs are not compiled; run the point alone"
    return None


def shared_keys(cfg: Config) -> dict:
    """The dotted keys that must be equal across a pack, with their values."""
    tree = OmegaConf.to_container(OmegaConf.structured(cfg))
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif prefix not in PER_MEMBER:
            flat[prefix] = value

    for key in SHARED:
        walk(key, tree[key])
    return flat


def pack_key(cfg: Config) -> str | None:
    """Points with equal keys can share a pack; None: this point runs alone."""
    return None if not_packable(cfg) else repr(sorted(shared_keys(cfg).items()))


def check_pack(cfgs: list[Config]) -> None:
    """Raise ConfigError (one line) unless these points can be packed together."""
    if not cfgs:
        raise ConfigError("ensemble: no points to pack")
    for i, cfg in enumerate(cfgs):
        if (why := not_packable(cfg)) is not None:
            raise ConfigError(f"ensemble point {i}: {why}")
    first = shared_keys(cfgs[0])
    for i, cfg in enumerate(cfgs[1:], start=1):
        for key, value in shared_keys(cfg).items():
            if value != first[key]:
                raise ConfigError(
                    f"ensemble point {i}: {key}={value} differs from point 0's {first[key]}; packed points share "
                    f"{', '.join(SHARED)} (augmentation may differ)"
                )


# --- the members -------------------------------------------------------------------------------------------------


@dataclass
class Member:
    """One point of the pack: its run folder's lifecycle (bench/lifecycle.py) and its Trainer."""

    index: int
    life: Lifecycle
    trainer: Trainer | None = None
    pack_size: int = 1

    @property
    def done(self) -> bool:
        return self.life.result is not None

    def finish(self) -> None:
        """The member leaves the pack: its result.json, as bench.train.run writes it, at once."""
        # wall time: the pack's, since this member started (the members trained side by side)
        result = self.trainer.outcome(time.time() - self.life.started)
        result["packed_with"] = self.pack_size
        self.life.finish(result)


def _start(index: int, cfg: DictConfig, typed: Config, run_dir: Path, data) -> tuple[Member | None, dict | None]:
    """A member ready to train (resumed from its checkpoint), or (None, result) for a point already finished in its
    folder. A member that cannot be built records its failure."""
    life = Lifecycle(cfg, typed, run_dir)
    if (done := life.start()) is not None:
        return None, done
    member = Member(index, life)
    with life.recording():
        member.trainer = Trainer(typed, life.store, life.logger, life.identity, data=data)
        member.trainer.resume()
    return member, None


# --- the packed step ---------------------------------------------------------------------------------------------


def packed_step(members: list[Member]) -> None:
    """One step of every member, their forwards and backwards batched into one; each member then updates as it
    would alone (`Trainer.update`: its losses wait on the device until its loop reads them)."""
    trainers = [m.trainer for m in members]
    steps = [t.step + 1 for t in trainers]
    batches = [t.next_batch(s) for t, s in zip(trainers, steps)]
    base = trainers[0].model
    names = [n for n, p in base.named_parameters()]
    per_member = [dict(t.model.named_parameters()) for t in trainers]
    stacked = {n: torch.stack([p[n] for p in per_member]) for n in names}
    buffers = dict(base.named_buffers())  # constants (masks, positions): shared
    x = torch.stack([b[0] for b in batches])
    numerics = trainers[0]._numerics

    def forward(params, xk):
        return functional_call(base, (params, buffers), (xk,))

    with numerics.training():
        with numerics.autocast():
            out = vmap(forward)(stacked, x)
        out = out.float()
        losses = [t.loss_fn(out[k], batches[k][1]) for k, t in enumerate(trainers)]
        for t in trainers:
            t.optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
    for k, (t, s, (xb, yb)) in enumerate(zip(trainers, steps, batches)):
        t.update(s, xb, yb, out[k], losses[k])


def train_packed(members: list[Member]) -> None:
    """Step the active members together until each has finished (its last step, or diverged); after each step,
    each member's `Trainer.end_step`, as in `Trainer.train`."""
    for m in members:  # resumed at or past the end (a checkpoint of a finished run): finish at once
        if m.trainer.step >= m.trainer.cfg.steps:
            m.finish()
    while active := [m for m in members if not m.done]:
        try:
            packed_step(active)
        except Exception:  # a step after an unread divergence may fail: those members had stopped before it
            stopped = [m for m in active if m.trainer.stopped_at_divergence()]
            for m in stopped:
                m.finish()
            if len(stopped) < len(active):
                raise  # the others' samplers moved on: the pack cannot take the step again
            continue
        signalled = checkpoint.Checkpointer.signalled()  # read once for the pack
        for m in active:
            t = m.trainer
            if t.end_step(t.step + 1, signalled) or t.step >= t.cfg.steps:
                m.finish()
        checkpoint.Checkpointer.hand_on(signalled, "packed run checkpointed")


def run_packed(cfgs: list[DictConfig], run_dirs: list[str | Path], record_failures: bool = True) -> list[dict]:
    """Train these points as one pack; each writes its ordinary run folder (config.yaml, metrics.csv, result.json)
    into run_dirs[i]. Returns the K results in order (a point already finished in its folder: its result, skipped).
    Raises ConfigError (one line, nothing computed) when the points cannot be packed together. An exception while
    the pack trains is re-raised; record_failures=True records it as every unfinished member's failure, False leaves
    their folders (checkpoint, no result.json) to a retry that can tell whose failure it was (bench/sweeps/packs.py)."""
    if len(cfgs) != len(run_dirs):
        raise ConfigError(f"ensemble: {len(cfgs)} configs but {len(run_dirs)} run folders")
    folders = [Path(d).resolve() for d in run_dirs]
    if len(set(folders)) != len(folders):
        dup = next(f for f in folders if folders.count(f) > 1)
        raise ConfigError(f"ensemble: run folder {dup} is given to more than one point")
    typed = []
    for i, cfg in enumerate(cfgs):
        try:
            typed.append(validate(cfg))
        except ConfigError as e:
            raise ConfigError(f"ensemble point {i}: {e}") from e
    check_pack(typed)
    for cfg, d in zip(cfgs, run_dirs):  # every folder's identity before any member trains (bench/runfolder/check.py)
        check_run_folder(Path(d), cfg)
    results: list[dict | None] = [None] * len(cfgs)
    members: list[Member] = []
    try:
        data = None  # one copy of the dataset for all members (augmentation stays per member)
        for i, (cfg, t, d) in enumerate(zip(cfgs, typed, run_dirs)):
            member, done = _start(i, cfg, t, Path(d), data)
            if member is None:
                results[i] = done
            else:
                members.append(member)
                data = member.trainer.data
        for m in members:
            m.pack_size = len(members)
        with STOP_SIGNALS:
            train_packed(members)
    except BaseException as e:
        for m in members:
            if not m.done:
                m.life.stop(e if record_failures else None)
        raise
    for m in members:
        results[m.index] = m.life.result
    return results  # type: ignore[return-value]


def run_alone_or_packed(cfgs: list[DictConfig], run_dirs: list[str | Path]) -> list[dict]:
    """One point: bench.run; several: a pack (the launcher may call this for each group)."""
    if len(cfgs) == 1:
        from bench.train import run

        return [run(cfgs[0], run_dirs[0])]
    return run_packed(cfgs, run_dirs)
