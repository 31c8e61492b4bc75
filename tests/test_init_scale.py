"""Every model x parameterization keeps its signal in a sane range at initialization on real inputs (issue 14).

Real inputs: mnist5k images (per-image standardized), also padded to 32 x 32 and repeated to 3 channels (the CIFAR
shape the paper's convolutional networks and their muP multipliers were built for), and BPE tokens of real text.
Thresholds, with the reasons:
- hidden activations (every nonlinearity's output, the embedding, every residual block) have rms in [1e-2, 1e2]:
  He / muP inits keep them O(1) (0.5-2.2 measured here); two decades either way is room for depth and width, while
  the muConv Myrtle this guards against fell to 8e-6;
- the output has rms > 1e-3: SP outputs are O(1); muP outputs shrink like 1/sqrt(width) by design (the readout's
  1/fan_in variance times its 1/sqrt(fan_in) multiplier), 0.03-0.09 at the paper's widths, which leaves 1e-3 for
  widths ~1,000x larger; the muConv Myrtle's output was 7e-7;
- a muP output is the SP output divided by sqrt(n), n the readout's fan-in, up to an O(1) factor (exactly 1 for
  the FCN and the Myrtle CNN, whose hidden layers compute the same function in both; WRN 0.7-1.1).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.data import build_dataset
from bench.data.mnist5k import load_mnist5k
from bench.models.cnn import Myrtle
from bench.models.fcn import FCN
from bench.models.param import Dense, Embedding
from bench.models.transformer import Block, Transformer
from bench.models.wrn import Block as WRNBlock
from bench.models.wrn import WideResNet
from tests.conftest import compose_cfg

# hidden activations: nonlinearity outputs, embeddings, residual blocks (a WRN's muP convolution output before its
# LayerNorm is small by design: its multiplier is sqrt(C_out / (H W C_in)) and the LayerNorm undoes it)
HIDDEN = (nn.ReLU, nn.GELU, Embedding, Block, WRNBlock)


@pytest.fixture(scope="module")
def images():
    x = load_mnist5k().x_train[:64]
    return {"mnist": x, "cifar_shape": nn.functional.pad(x, (2, 2, 2, 2)).repeat(1, 3, 1, 1)}


@pytest.fixture(scope="module")
def tokens():
    cfg = compose_cfg("dataset=text", "dataset.vocab_size=512", "dataset.context=32").dataset
    return build_dataset(cfg, torch.device("cpu")).x_train[:16]


def rms(t: torch.Tensor) -> float:
    return t.detach().float().pow(2).mean().sqrt().item()


def forward_rms(model: nn.Module, x: torch.Tensor) -> tuple[float, dict[str, float]]:
    """(output rms, {layer name: rms of its output}) for every hidden layer."""
    hidden: dict[str, float] = {}

    def record(name: str):
        def hook(module, args, out) -> None:  # returns None: the output is left as it is
            hidden.setdefault(name, rms(out))

        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if isinstance(m, HIDDEN)]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    return rms(out), hidden


def vision_models(param: str, c: int, hw: int):
    """Each vision model at the paper's width: FCN-4-512, Myrtle-5 and -10 with 64 channels, WRN-16-4."""
    shape = (c, hw, hw)
    yield "fcn", FCN(shape, 10, 4, 512, "relu", param)
    yield "myrtle5", Myrtle(shape, 10, 5, 64, param)
    yield "myrtle10", Myrtle(shape, 10, 10, 64, param)
    yield "wrn16", WideResNet(shape, 10, 16, 4, param)


def readout_fan_in(model: nn.Module) -> int:
    return next(m for m in model.modules() if isinstance(m, Dense) and m.readout).in_features


@pytest.mark.parametrize("shape", ["mnist", "cifar_shape"])
def test_vision_models_keep_a_sane_signal(images, shape):
    x = images[shape]
    outputs = {}
    for param in ("sp", "mup"):
        torch.manual_seed(0)
        for name, model in vision_models(param, x.shape[1], x.shape[-1]):
            out, hidden = forward_rms(model, x)
            outputs[name, param] = out
            assert out > 1e-3 and math.isfinite(out), (name, param, out)
            low, high = min(hidden, key=hidden.get), max(hidden, key=hidden.get)
            assert 1e-2 <= hidden[low] and hidden[high] <= 1e2, (name, param, low, hidden[low], high, hidden[high])
            if param == "sp":
                assert out > 0.1, (name, out)  # SP outputs are O(1)
            else:  # muP: the SP output over sqrt(n), n the readout's fan-in, up to an O(1) factor
                scaled = out * math.sqrt(readout_fan_in(model)) / outputs[name, "sp"]
                assert 0.3 < scaled < 3, (name, out, outputs[name, "sp"], scaled)


@pytest.mark.parametrize("param", ["sp", "mup"])
@pytest.mark.parametrize("ln", ["pre", "post"])
def test_transformer_keeps_a_sane_signal(tokens, param, ln):
    torch.manual_seed(0)
    out, hidden = forward_rms(Transformer(512, 4, 128, 4, 32, ln, param), tokens)
    assert out > 1e-3 and math.isfinite(out), (param, ln, out)
    assert 1e-2 <= min(hidden.values()) and max(hidden.values()) <= 1e2, hidden
