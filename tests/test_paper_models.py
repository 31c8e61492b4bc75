"""The paper's models train end to end from the command-line config, and SP/muP differ as the paper says."""

import math

import pandas as pd
import pytest
import torch

import bench
from bench.data.mnist5k import load_mnist5k
from bench.losses import mse
from bench.models.fcn import FCN
from bench.sharpness import sharpness
from tests.conftest import compose_cfg

FAST = ["steps=3", "eval_every=3", "batch_size=16", "device=cpu", "dataset.num_test=100"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=cnn", "model.width=8"],
        ["model=cnn", "model.depth=10", "model.width=8", "model.param=mup", "loss=xent"],
        ["model=wrn", "model.width_factor=1", "dataset.flip=true", "dataset.crop_padding=4", "dataset.mixup=true"],
    ],
)
def test_image_models_train_a_few_steps(tmp_path, overrides):
    result = bench.run(compose_cfg(*overrides, *FAST), tmp_path)
    assert result["status"] == "completed" and result["stop_step"] == 3
    assert math.isfinite(result["final_test_loss"])


@pytest.mark.parametrize(
    "ln,param,loss", [("pre", "sp", "xent"), ("post", "mup", "xent"), ("pre_no_final", "sp", "mse")]
)
def test_transformer_trains_on_text(tmp_path, ln, param, loss):
    overrides = ["model=transformer", "dataset=text", "model.width=32", "model.depth=1", "model.heads=2"]
    overrides += [f"model.ln={ln}", f"model.param={param}", f"loss={loss}", "dataset.vocab_size=256"]
    overrides += ["model.context=16", "dataset.context=16", "steps=3", "eval_every=3", "batch_size=8", "device=cpu"]
    result = bench.run(compose_cfg(*overrides), tmp_path)
    assert result["status"] == "completed" and result["num_classes"] == 256
    row = pd.read_csv(tmp_path / "metrics.csv").iloc[-1]
    assert 0 <= row["test_acc"] <= 1 and 0 <= row["train_acc"] <= 1
    if loss == "xent":  # perplexity = exp(test next-token cross-entropy); about the vocabulary size at init
        assert row["test_ppl"] == pytest.approx(math.exp(row["test_loss"]))
    assert 50 < row["test_ppl"] < 2000


@pytest.mark.slow
def test_mup_fcn_starts_much_flatter_than_sp():
    """lambda0 of FCN-4-512 with MSE on a batch of 128 mnist5k images (B = 128, as runs measure it): SP 77.5, muP
    0.156 (the paper: ~50 vs ~0.05 on CIFAR-10). 512 images: SP 75.8, muP 0.152; the full 4,000: SP 75.0, muP 0.148."""
    data = load_mnist5k()
    x, y = data.x_train[:128], data.y_train[:128]
    values = {}
    for param in ("sp", "mup"):
        torch.manual_seed(0)
        values[param] = sharpness(FCN((1, 28, 28), 10, 4, 512, "relu", param), mse, x, y, tol=1e-3).value
    assert values["sp"] > 20 and values["mup"] < 1
    assert values["sp"] > 100 * values["mup"]


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_sharpness_runs_through_every_model(param):
    """Hessian-vector products (forward-over-reverse) pass through LayerNorm, attention and 'SAME' padding."""
    from bench.losses import xent
    from bench.models.cnn import Myrtle
    from bench.models.transformer import Transformer
    from bench.models.wrn import WideResNet

    torch.manual_seed(0)
    images, labels = torch.randn(4, 1, 8, 8), torch.eye(10)[:4]
    tokens = torch.randint(0, 50, (4, 8))
    cases = [
        (Myrtle((1, 8, 8), 10, 5, 8, param), images, labels),
        (WideResNet((1, 8, 8), 10, 16, 1, param), images, labels),
        (Transformer(50, 1, 16, 2, 8, "pre", param), tokens, torch.roll(tokens, -1, 1)),
    ]
    for model, x, y in cases:
        assert math.isfinite(sharpness(model, xent, x, y, tol=1e-2, max_iter=50).value)
