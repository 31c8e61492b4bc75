"""Checkpoints in-process: a run killed after a checkpoint and resumed equals the same run left alone; finished
runs are skipped (force=true reruns them); the pre-timeout signal checkpoints and hands the signal on; failures
(out of memory included) are recorded."""

import os
import signal

import pytest
import torch

from bench import checkpoint
from bench.train import Trainer, run
from tests.conftest import compose_cfg

# momentum: the optimizer has state to restore; checkpoint_every 10 with 40 steps: kill after step 25 loses 5 steps
OVERRIDES = [
    "model.width=32",
    "model.depth=2",
    "steps=40",
    "eval_every=8",
    "batch_size=64",
    "device=cpu",
    "optimizer.momentum=0.9",
    "optimizer.lr=0.05",
    "checkpoint_every=10",
]


TRAIN_STEP = Trainer.train_step


class Killed(Exception):
    pass


def count_steps(monkeypatch, kill_at: int | None = None) -> list[int]:
    """Record the steps Trainer.train_step runs; raise Killed at step kill_at (a crash after a checkpoint)."""
    seen: list[int] = []
    original = TRAIN_STEP

    def step(self, s):
        if s == kill_at:
            raise Killed(f"killed at step {s}")
        seen.append(s)
        return original(self, s)

    monkeypatch.setattr(Trainer, "train_step", step)
    return seen


def comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "git_sha")}


def test_resume_after_crash_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = compose_cfg(*OVERRIDES)
    alone = run(cfg, tmp_path / "alone")

    steps = count_steps(monkeypatch, kill_at=25)
    with pytest.raises(Killed):
        run(cfg, tmp_path / "resumed")
    assert steps == list(range(1, 25))
    ckpt = torch.load(tmp_path / "resumed" / checkpoint.CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 20 and [r["step"] for r in ckpt["rows"]] == [8, 16]
    assert set(ckpt["objects"]) >= {"model", "optimizer", "sampler"}
    assert ckpt["objects"]["optimizer"]["state"], "momentum buffers are saved"

    steps = count_steps(monkeypatch)
    resumed = run(cfg, tmp_path / "resumed")  # the failed attempt is retried and resumes from step 20
    assert steps == list(range(21, 41))
    assert (tmp_path / "resumed" / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable(resumed) == comparable(alone)
    assert not (tmp_path / "resumed" / checkpoint.CHECKPOINT).exists(), "a finished run drops its checkpoint"
    assert not (tmp_path / "resumed" / "traceback.txt").exists()


def test_finished_run_is_skipped_and_force_reruns(tmp_path, monkeypatch):
    cfg = compose_cfg(*OVERRIDES)
    first = run(cfg, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    steps = count_steps(monkeypatch)
    again = run(cfg, tmp_path)
    assert steps == [] and again == json_roundtrip(first)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    forced = run(compose_cfg(*OVERRIDES, "force=true"), tmp_path)
    assert steps == list(range(1, 41))
    assert comparable(forced) == comparable(first)


def json_roundtrip(result: dict) -> dict:
    import json

    from bench.store import _json_safe

    return json.loads(json.dumps(_json_safe(result)))


def test_preemption_signal_checkpoints_then_hands_on(tmp_path, monkeypatch):
    """SIGUSR2 mid-step: the step finishes, checkpoint.pt is written at that step, then the previous handler runs
    (submitit's requeues and exits: here it raises SystemExit like submitit's does)."""
    cfg = compose_cfg(*OVERRIDES, "checkpoint_every=0")
    alone = run(cfg, tmp_path / "alone")
    calls = []

    def submitit_handler(signum, frame):
        calls.append(signum)
        raise SystemExit(-1)

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    original = TRAIN_STEP

    def step(self, s):
        if s == 13:
            os.kill(os.getpid(), signal.SIGUSR2)
        return original(self, s)

    monkeypatch.setattr(Trainer, "train_step", step)
    try:
        with pytest.raises(SystemExit):
            run(cfg, tmp_path / "preempted")
        assert calls == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler, "the handler before the run is back"
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert not (tmp_path / "preempted" / "result.json").exists(), "preempted is not failed"
    ckpt = torch.load(tmp_path / "preempted" / checkpoint.CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 13
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = run(cfg, tmp_path / "preempted")
    assert (tmp_path / "preempted" / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable(resumed) == comparable(alone)


def test_out_of_memory_is_reported_as_such(tmp_path, monkeypatch):
    def oom(self, s):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Trainer, "train_step", oom)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run(compose_cfg(*OVERRIDES), tmp_path)
    result = json_roundtrip(checkpoint.RunStore(tmp_path).result())
    assert result["status"] == "failed" and result["error_type"] == "out_of_memory"
    assert result["error"].startswith("out of memory: OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00")
    assert "OutOfMemoryError" in (tmp_path / "traceback.txt").read_text()


def test_corrupt_checkpoint_is_one_clear_failure(tmp_path):
    (tmp_path / checkpoint.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="cannot resume from it .*force=true starts over"):
        run(compose_cfg(*OVERRIDES), tmp_path)
    assert checkpoint.RunStore(tmp_path).result()["status"] == "failed"
