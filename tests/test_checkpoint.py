"""Checkpoints in-process: a run killed after a checkpoint and resumed equals the same run left alone; finished
runs are skipped (force=true reruns them); the pre-timeout signal checkpoints and hands the signal on; failures
(out of memory included) are recorded."""

import os
import signal

import pytest
import torch

from bench import checkpoint
from bench.runfolder.store import RunStore
from bench.train import Trainer, run
from tests.conftest import compose_cfg
from tests.helpers import comparable, json_roundtrip

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
COMPONENTS = ("model", "optimizer", "sampler", "augment", "schedule", "measurer", "means", "progress", "rng")


def resumed_identity(run_dir) -> str:
    from omegaconf import OmegaConf

    from bench.runfolder import run_identity

    return run_identity(OmegaConf.load(run_dir / "config.yaml"))


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


def test_resume_after_crash_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = compose_cfg(*OVERRIDES)
    alone = run(cfg, tmp_path / "alone")

    steps = count_steps(monkeypatch, kill_at=25)
    with pytest.raises(Killed):
        run(cfg, tmp_path / "resumed")
    assert steps == list(range(1, 25))
    ckpt = checkpoint.read(tmp_path / "resumed" / checkpoint.CHECKPOINT)
    assert ckpt["step"] == 20 and [r["step"] for r in ckpt["components"]["progress"]["rows"]] == [8, 16]
    assert ckpt["format"] == checkpoint.FORMAT and ckpt["run_identity"] == resumed_identity(tmp_path / "resumed")
    assert set(ckpt["components"]) == set(COMPONENTS), "named components, nothing found by a scan"
    assert ckpt["components"]["optimizer"]["state"], "momentum buffers are saved"

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
    ckpt = checkpoint.read(tmp_path / "preempted" / checkpoint.CHECKPOINT)
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
    result = json_roundtrip(RunStore(tmp_path).result())
    assert result["status"] == "failed" and result["error_type"] == "out_of_memory"
    assert result["error"].startswith("out of memory: OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00")
    assert "OutOfMemoryError" in (tmp_path / "traceback.txt").read_text()


def killed_after_checkpoint(cfg, run_dir, monkeypatch) -> bytes:
    """Run until step 25 (checkpoint at step 20, metrics rows to 24 on disk), crash; the checkpoint's bytes."""
    count_steps(monkeypatch, kill_at=25)
    with pytest.raises(Killed):
        run(cfg, run_dir)
    monkeypatch.setattr(Trainer, "train_step", TRAIN_STEP)
    return (run_dir / checkpoint.CHECKPOINT).read_bytes()


@pytest.mark.parametrize("damage", ["zeroed_middle", "truncated", "appended", "no_header"])
def test_damaged_checkpoint_restarts_from_scratch(tmp_path, monkeypatch, caplog, damage):
    """A checkpoint that fails its checksum or size is never loaded: the run trains from step 0 to the metrics of
    an uninterrupted run, logs a warning and records why in result.json; no force=true needed."""
    cfg = compose_cfg(*OVERRIDES)
    alone = run(cfg, tmp_path / "alone")
    path = tmp_path / "run" / checkpoint.CHECKPOINT
    data = bytearray(killed_after_checkpoint(cfg, tmp_path / "run", monkeypatch))
    if damage == "zeroed_middle":  # like dd if=/dev/zero conv=notrunc: same size, zeros in the payload
        mid = len(data) // 2
        data[mid : mid + 4096] = bytes(4096)
    elif damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "appended":  # bytes written after the payload: said so, not "truncated"
        data += b"garbage"
    else:
        data = bytearray(b"not a checkpoint")
    path.write_bytes(bytes(data))

    steps = count_steps(monkeypatch)
    with caplog.at_level("WARNING"):
        resumed = run(cfg, tmp_path / "run")
    assert steps == list(range(1, 41)), "restarted from step 0"
    why = {
        "zeroed_middle": "checksum mismatch",
        "truncated": "truncated",
        "appended": "7 bytes after its",
        "no_header": "no valid header",
    }[damage]
    assert why in resumed["checkpoint_discarded"]
    assert json_roundtrip(RunStore(tmp_path / "run").result())["checkpoint_discarded"].startswith("checkpoint.pt")
    assert any("starts again from step 0" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable({k: v for k, v in resumed.items() if k != "checkpoint_discarded"}) == comparable(alone)


def test_other_format_is_refused_in_one_line(tmp_path, monkeypatch):
    """A format-1 checkpoint (a bare torch.save file, before checksums) is refused, not guessed at."""
    cfg = compose_cfg(*OVERRIDES)
    killed_after_checkpoint(cfg, tmp_path, monkeypatch)
    torch.save({"format": 1, "step": 3}, tmp_path / checkpoint.CHECKPOINT)
    with pytest.raises(checkpoint.CheckpointError) as info:
        run(cfg, tmp_path)
    assert "format 1" in str(info.value) and "\n" not in str(info.value)
    assert RunStore(tmp_path).result()["status"] == "failed"


def test_components_must_match(tmp_path, monkeypatch):
    """A checkpoint lacking a component of the run is refused (a component that forgets its state is not silent)."""
    cfg = compose_cfg(*OVERRIDES)
    path = tmp_path / checkpoint.CHECKPOINT
    killed_after_checkpoint(cfg, tmp_path, monkeypatch)
    ckpt = checkpoint.read(path)
    del ckpt["components"]["measurer"]
    path.write_bytes(checkpoint.encode(ckpt))
    with pytest.raises(checkpoint.CheckpointError, match="missing \\['measurer'\\]"):
        run(cfg, tmp_path)


def test_sigterm_checkpoints_then_stops(tmp_path, monkeypatch):
    """SIGTERM (scancel, preemption, kill) mid-step: the step finishes, checkpoint.pt is written, the run stops
    without a result (exit status 143); the same command resumes it to the uninterrupted metrics."""
    cfg = compose_cfg(*OVERRIDES, "checkpoint_every=0")
    alone = run(cfg, tmp_path / "alone")

    def step(self, s):
        if s == 13:
            os.kill(os.getpid(), signal.SIGTERM)
        return TRAIN_STEP(self, s)

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(SystemExit) as info:
        run(cfg, tmp_path / "run")
    assert info.value.code == 143 and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert not (tmp_path / "run" / "result.json").exists()
    assert checkpoint.read(tmp_path / "run" / checkpoint.CHECKPOINT)["step"] == 13
    monkeypatch.setattr(Trainer, "train_step", TRAIN_STEP)
    resumed = run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable(resumed) == comparable(alone)


def test_checkpointer_takes_explicit_components_without_a_trainer(tmp_path):
    """The checkpointer needs only a folder, the named components, the identity and the records."""
    from bench.runfolder.check import IdentityMismatch

    model, records = torch.nn.Linear(3, 2), {}
    ckpt = checkpoint.Checkpointer(tmp_path, lambda: {"model": model}, "abc", every=2, total_steps=10, records=records)
    assert ckpt.resume() == 0  # nothing to resume
    ckpt.after_step(1)
    assert not (tmp_path / "checkpoint.pt").exists()  # not a multiple of `every`
    ckpt.after_step(2)
    saved = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert ckpt.resume() == 2
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), saved))
    other = checkpoint.Checkpointer(tmp_path, lambda: {"model": model}, "xyz", every=2, total_steps=10, records=records)
    with pytest.raises(IdentityMismatch, match="of run abc"):
        other.resume()  # a checkpoint of another run identity is refused
