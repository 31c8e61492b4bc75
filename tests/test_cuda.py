"""CUDA-only checks (make gpu-check runs them on a GPU node; elsewhere each skips with a line): a run resumed from a
checkpoint on CUDA equals the same run left alone, and a deterministic run repeats exactly."""

import pytest
import torch

from bench.train import Trainer, run
from tests.conftest import compose_cfg
from tests.helpers import comparable

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: runs in make gpu-check"),
]

# Myrtle CNN (cuDNN convolutions) with momentum: optimizer state to restore; a checkpoint every 10 of 40 steps
OVERRIDES = [
    "model=cnn",
    "model.width=16",
    "steps=40",
    "eval_every=8",
    "batch_size=64",
    "device=cuda",
    "optimizer.momentum=0.9",
    "optimizer.lr=0.05",
    "checkpoint_every=10",
    "deterministic=true",
]


class Killed(Exception):
    pass


def test_cuda_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = compose_cfg(*OVERRIDES)
    alone = run(cfg, tmp_path / "alone")
    original = Trainer.train_step

    def crash_at_25(self, s):
        if s == 25:
            raise Killed("killed at step 25")
        return original(self, s)

    monkeypatch.setattr(Trainer, "train_step", crash_at_25)
    with pytest.raises(Killed):
        run(cfg, tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = run(cfg, tmp_path / "resumed")  # resumes from the step-20 checkpoint
    assert (tmp_path / "resumed" / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable(resumed) == comparable(alone)
    assert alone["device"].startswith("cuda") and alone["device_name"] == torch.cuda.get_device_name(0)


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_deterministic_cuda_run_repeats_exactly(tmp_path, precision):
    cfg = compose_cfg(*OVERRIDES[:-1], "deterministic=true", f"precision={precision}", "steps=20")
    a, b = run(cfg, tmp_path / "a"), run(cfg, tmp_path / "b")
    assert a["status"] == "completed" and a["final_train_loss"] == b["final_train_loss"]
    assert a["tf32_matmul"] is (precision == "tf32")


def test_cuda_pack_equals_the_points_alone(tmp_path):
    from bench import ensemble

    base = ["model.width=64", "model.depth=3", "steps=30", "eval_every=10", "batch_size=64", "device=cuda"]
    cfgs = [compose_cfg(*base, f"optimizer.lr={lr}", f"seed={i}") for i, lr in enumerate((0.05, 0.1, 500.0))]
    packed = ensemble.run_packed(cfgs, [tmp_path / f"p{i}" for i in range(3)])
    assert [r["status"] for r in packed] == ["completed", "completed", "diverged"]
    for i, cfg in enumerate(cfgs):
        alone = run(cfg, tmp_path / f"a{i}")
        assert packed[i]["stop_step"] == alone["stop_step"]
        assert packed[i]["final_train_loss"] == pytest.approx(alone["final_train_loss"], rel=1e-3, nan_ok=True)
