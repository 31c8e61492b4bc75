"""The sync-free step loop (bench/train.py): the losses are read back to the host every `sync_every` steps, at each
evaluation and checkpoint, and at the end, never at the other steps; the runs record exactly what the per-step loop
(sync_every=1) records, the divergence step included."""

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from bench import checkpoint, ensemble
from bench.config import validate
from bench.errors import ConfigError
from bench.runfolder import RESULT, run_identity
from bench.runfolder.store import RunStore
from bench.signals import Terminated
from bench.train import Trainer, run
from tests.conftest import compose_cfg
from tests.helpers import comparable, tiny_run
from tests.test_ensemble import assert_same_run

TINY = tiny_run("threads=1", drop=("steps", "eval_every"))
# linear warmup to a rate that diverges on the way: the loss blows up at step 48 (between two reads at sync_every=32)
DIVERGES = [*TINY, "steps=60", "eval_every=10", "schedule.warmup_steps=60", "optimizer.lr=40"]
DIVERGED_AT = 48
TORCH = str(Path(torch.__file__).parent)
READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


def same_run(a: Path, b: Path) -> None:
    """Both folders hold the same metrics.csv (byte for byte) and result.json (but for the wall time)."""
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    ra, rb = (json.loads((d / RESULT).read_text()) for d in (a, b))
    assert comparable(ra) == comparable(rb)


# --- host reads ----------------------------------------------------------------------------------------------------


class HostReads:
    """Counts the tensor -> host reads (item, tolist, bool(t), float(t), ...) made during training steps (alone or in
    a pack), by the step they follow; reads inside an evaluation or the final result are not counted (the running
    means, the test-set pass and the last minibatch's accuracy read their sums). With `outside_torch`, reads made by
    torch itself are not counted (Adam's step counter: a CPU tensor on any device, read with .item())."""

    def __init__(self, monkeypatch, outside_torch: bool = False):
        self.by_step: dict[int, int] = {}
        self.step = 0
        self.evaluating = False
        for name in READS:
            monkeypatch.setattr(torch.Tensor, name, self.wrap(getattr(torch.Tensor, name), outside_torch))
        step, packed_step = Trainer.train_step, ensemble.packed_step

        def train_step(trainer, s):
            self.step = s
            return step(trainer, s)

        def packed_train_step(members):
            self.step = members[0].trainer.step + 1
            return packed_step(members)

        monkeypatch.setattr(Trainer, "train_step", train_step)
        monkeypatch.setattr(ensemble, "packed_step", packed_train_step)
        for name in ("log_eval", "outcome"):
            monkeypatch.setattr(Trainer, name, self.uncounted(getattr(Trainer, name)))

    def uncounted(self, method):
        def call(*args, **kwargs):
            self.evaluating = True
            try:
                return method(*args, **kwargs)
            finally:
                self.evaluating = False

        return call

    def wrap(self, method, outside_torch: bool):
        def read(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if self.step and not self.evaluating and not (outside_torch and caller.startswith(TORCH)):
                self.by_step[self.step] = self.by_step.get(self.step, 0) + 1
            return method(tensor, *args, **kwargs)

        return read


def test_one_host_read_per_sync_every_steps(tmp_path, monkeypatch):
    """64 steps, sync_every=16, one evaluation at step 40 and at the end: the loop reads back once at steps 16 and
    32, at the evaluation (40), 16 steps after it (56) and at the end (64); no other step reads anything."""
    cfg = compose_cfg(*TINY, "steps=64", "eval_every=40", "sync_every=16", "checkpoint_every=0")
    trainer = Trainer(validate(cfg), RunStore(tmp_path))
    reads = HostReads(monkeypatch)
    result = trainer.train()
    assert result["status"] == "completed" and result["stop_step"] == 64
    assert reads.by_step == {16: 1, 32: 1, 40: 1, 56: 1, 64: 1}
    assert [r["step"] for r in trainer.rows.values()] == [40, 64]


def test_no_per_step_reads_with_adam_and_augmentation(tmp_path, monkeypatch):
    """GI-Adam, flips, crops and mixup add no host read (torch's own read of Adam's CPU step counter aside)."""
    augment = ["dataset.flip=true", "dataset.crop_padding=2", "dataset.mixup=true"]
    adam = ["optimizer=gi_adam", "optimizer.lr=0.001", "steps=24", "eval_every=24", "sync_every=8"]
    trainer = Trainer(validate(compose_cfg(*TINY, *augment, *adam)), RunStore(tmp_path))
    reads = HostReads(monkeypatch, outside_torch=True)
    assert trainer.train()["status"] == "completed"
    assert reads.by_step == {8: 1, 16: 1, 24: 1}


def test_measured_steps_read_each_loss_then_the_loop_buffers(tmp_path, monkeypatch):
    """measure.every logs each step's loss up to measure.until (a read per step, more at the measured steps); after
    it the steps are read back every sync_every steps again."""
    measure = ["measure.every=4", "measure.until=8", "measure.max_iter=10"]
    cfg = compose_cfg(*TINY, *measure, "steps=24", "eval_every=24", "sync_every=8", "checkpoint_every=0")
    trainer = Trainer(validate(cfg), RunStore(tmp_path))
    reads = HostReads(monkeypatch)
    trainer.train()
    assert set(reads.by_step) == {*range(1, 9), 16, 24} and reads.by_step[16] == reads.by_step[24] == 1
    assert sorted(s for s, row in trainer.rows.items() if "sharpness" in row) == [1, 5]


def test_persistent_catapult_reads_every_step(tmp_path, monkeypatch):
    """The documented exception: the method reads each step's loss (`reads_loss`), so the loop checks every step."""
    cfg = compose_cfg(*TINY, "schedule=persistent_catapult", "schedule.warmup_steps=16", "optimizer.lr=8", "steps=6")
    trainer = Trainer(validate(cfg), RunStore(tmp_path))
    assert trainer.schedule.reads_loss
    reads = HostReads(monkeypatch)
    trainer.train()
    assert set(reads.by_step) == set(range(1, 7))


# three points that train side by side: the reads every 16 steps, at the evaluation (40) and the end; the third
# diverges at step 48 (between two reads, found at the read of step 56) and leaves the pack
PACKED = [
    [*TINY, "steps=64", "optimizer.momentum=0.9", "seed=1"],
    [*TINY, "steps=64", "optimizer=adam", "optimizer.lr=0.003", "schedule=cosine", "schedule.warmup_steps=8", "seed=2"],
    DIVERGES,
]


def test_a_pack_reads_every_sync_every_steps_and_records_what_its_points_record_alone(tmp_path, monkeypatch):
    """A packed run follows sync_every as a run alone: each member reads its losses back once every 16 steps, at
    the evaluation and at its end; it records what the pack records read at every step (bit for bit), and what
    each point records alone with the same sync_every (to float tolerance: the batched kernels)."""
    cfgs = {every: [compose_cfg(*o, "eval_every=40", f"sync_every={every}") for o in PACKED] for every in (1, 16)}
    reads = HostReads(monkeypatch, outside_torch=True)
    results = ensemble.run_packed(cfgs[16], [tmp_path / f"packed{i}" for i in range(3)])
    assert reads.by_step == {16: 3, 32: 3, 40: 3, 56: 3, 64: 2}
    assert [r["status"] for r in results] == ["completed", "completed", "diverged"]
    assert results[2]["diverged_step"] == results[2]["stop_step"] == DIVERGED_AT
    monkeypatch.undo()
    ensemble.run_packed(cfgs[1], [tmp_path / f"per_step{i}" for i in range(3)])
    for i, cfg in enumerate(cfgs[16]):
        same_run(tmp_path / f"per_step{i}", tmp_path / f"packed{i}")
        run(cfg, tmp_path / f"alone{i}")
        assert_same_run(tmp_path / f"packed{i}", tmp_path / f"alone{i}")


def test_train_py_names_no_warmup_method():
    source = (Path(__file__).parents[1] / "bench" / "train.py").read_text()
    assert "Catapult" not in source, "the loop asks the warmup method (reads_loss), never names one"


# --- the same records as the per-step loop --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("trains", [*TINY, "steps=40", "eval_every=10", "checkpoint_every=15", "optimizer.momentum=0.9"]),
        ("diverges", DIVERGES),
        ("diverges_trains_on", [*DIVERGES, "stop_on_divergence=false"]),
        ("diverges_nan_only", [*TINY, "steps=60", "eval_every=10", "schedule.warmup_steps=60", "optimizer.lr=200",
                               "diverge_factor=inf"]),
        ("measured_then_diverges", [*DIVERGES, "measure.every=5", "measure.max_iter=20"]),
        ("persistent_catapult", [*TINY, "steps=12", "eval_every=5", "schedule=persistent_catapult",
                                 "schedule.warmup_steps=16", "optimizer.lr=8"]),
    ],
)  # fmt: skip
def test_sync_every_changes_no_record(tmp_path, name, overrides):
    """metrics.csv and result.json are those of the per-step loop (sync_every=1); a run that trains is read back
    every 7 steps too (reads, evaluations and checkpoints interleaved), the others at the default 32."""
    per_step = run(compose_cfg(*overrides, "sync_every=1"), tmp_path / "1")
    if name.startswith("diverges") or name == "measured_then_diverges":
        assert per_step["status"] == "diverged" and 12 < per_step["diverged_step"] < 60
        assert per_step["diverged_step"] % 7 and per_step["diverged_step"] % 32, "a step between two reads"
    if name in ("diverges", "measured_then_diverges"):
        assert per_step["diverged_step"] == per_step["stop_step"] == DIVERGED_AT
    for every in (7, 32) if name == "trains" else (32,):
        result = run(compose_cfg(*overrides, f"sync_every={every}"), tmp_path / str(every))
        same_run(tmp_path / "1", tmp_path / str(every))
        assert result["run_identity"] == per_step["run_identity"], "sync_every is not part of the run's identity"


def test_a_step_failing_after_an_unread_divergence(tmp_path, monkeypatch):
    """A step past the divergence may fail (the per-step loop never takes it): the run ends diverged at the bad step,
    as the per-step loop records it."""
    run(compose_cfg(*DIVERGES, "sync_every=1"), tmp_path / "per_step")
    step = Trainer.train_step

    def fails_after(trainer, s):
        if s == DIVERGED_AT + 2:
            raise FloatingPointError("a step that cannot be taken")
        return step(trainer, s)

    monkeypatch.setattr(Trainer, "train_step", fails_after)
    result = run(compose_cfg(*DIVERGES, "sync_every=32"), tmp_path / "sync_free")
    assert result["diverged_step"] == DIVERGED_AT
    same_run(tmp_path / "per_step", tmp_path / "sync_free")
    # with nothing diverged, the failure is the run's
    with pytest.raises(FloatingPointError):
        run(compose_cfg(*DIVERGES, "sync_every=32", "optimizer.lr=1"), tmp_path / "fails")


def test_sigterm_between_reads_checkpoints_every_step_taken(tmp_path, monkeypatch):
    """SIGTERM at step 13 (no read due): the loop reads the 13 steps back, checkpoints at 13 and stops; the resumed
    run ends as the uninterrupted one."""
    overrides = [*TINY, "steps=30", "eval_every=10", "sync_every=32", "checkpoint_every=0", "optimizer.momentum=0.9"]
    cfg = compose_cfg(*overrides)
    run(cfg, tmp_path / "alone")
    step = Trainer.train_step

    def terminated_at_13(trainer, s):
        out = step(trainer, s)
        if s == 13:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(Trainer, "train_step", terminated_at_13)
    with pytest.raises(Terminated):
        run(cfg, tmp_path / "resumed")
    saved = checkpoint.read(tmp_path / "resumed" / checkpoint.CHECKPOINT)["components"]
    assert saved["progress"]["step"] == 13 and saved["means"]["steps"] == 3, "steps 11-13 in the running sums"
    monkeypatch.setattr(Trainer, "train_step", step)
    run(cfg, tmp_path / "resumed")
    same_run(tmp_path / "alone", tmp_path / "resumed")


def test_no_checkpoint_of_unread_steps(tmp_path):
    trainer = Trainer(validate(compose_cfg(*TINY, "steps=4")), RunStore(tmp_path))
    trainer.train_step(1)
    with pytest.raises(RuntimeError, match="not read yet"):
        trainer.checkpointer().save(1)


# --- the key -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_bad_sync_every(bad):
    with pytest.raises(ConfigError, match="sync_every"):
        validate(compose_cfg(*TINY, f"sync_every={bad}"))


def test_sync_every_is_not_part_of_the_identity():
    assert run_identity(compose_cfg(*TINY, "sync_every=1")) == run_identity(compose_cfg(*TINY, "sync_every=99"))


# --- on CUDA: the device's own sync detector -------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: runs in make gpu-check")
@pytest.mark.parametrize(
    "overrides,synced",
    [
        # an epoch is 63 steps: the sampler's new permutation (step 64) is copied without a sync
        (["steps=96", "eval_every=96", "sync_every=40", "dataset.flip=true", "dataset.crop_padding=2"], {40, 80, 96}),
        (
            ["steps=20", "eval_every=20", "sync_every=8", "batch_size=0"],
            {8, 16, 20},
        ),  # full batch: a new epoch each step
    ],
)
def test_cuda_steps_synchronize_only_when_read(tmp_path, monkeypatch, overrides, synced):
    """torch.cuda.set_sync_debug_mode warns at each synchronizing call: outside evaluations, only the reads."""
    import warnings

    cfg = compose_cfg(*TINY, "device=cuda", "optimizer.momentum=0.9", "checkpoint_every=0", *overrides)
    trainer = Trainer(validate(cfg), RunStore(tmp_path))
    steps: dict[int, int] = {}
    current = {"step": 0, "evaluating": False}
    step, log_eval = Trainer.train_step, Trainer.log_eval

    def train_step(self, s):
        current["step"] = s
        return step(self, s)

    def log_eval_unwatched(self, s):
        current["evaluating"] = True
        torch.cuda.set_sync_debug_mode(0)
        try:
            return log_eval(self, s)
        finally:
            torch.cuda.set_sync_debug_mode("warn")
            current["evaluating"] = False

    def record(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message) and not current["evaluating"]:
            steps[current["step"]] = steps.get(current["step"], 0) + 1

    monkeypatch.setattr(Trainer, "train_step", train_step)
    monkeypatch.setattr(Trainer, "log_eval", log_eval_unwatched)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", record)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = trainer.train()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert result["status"] == "completed"
    assert set(steps) == synced, f"synchronizing calls by step: {steps}"
