"""Models: parameter counts and the initialization of docs/paper.md section 5."""

import math

import pytest
import torch

from bench.models import build_model, num_params
from bench.models.fcn import FCN
from bench.models.param import Dense
from tests.conftest import compose_cfg


def test_fcn_4_512_on_cifar_shape_has_2_103_818_parameters():
    assert num_params(FCN((3, 32, 32), 10, depth=4, width=512)) == 2_103_818


def test_fcn_from_config():
    cfg = compose_cfg()
    model = build_model(cfg.model, (1, 28, 28), 10)
    assert num_params(model) == 784 * 512 + 512 + 2 * (512 * 512 + 512) + 512 * 10 + 10


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_dense_init_variance_and_truncation(param):
    torch.manual_seed(0)
    fan_in, fan_out = 400, 600
    layer = Dense(fan_in, fan_out, param, scale=2.0)
    want = 2.0 / fan_in if param == "sp" else 2.0 / fan_out
    var = layer.weight.var().item()
    n = layer.weight.numel()
    assert abs(var - want) < 5 * want * math.sqrt(2 / n)  # within sampling error
    sigma = math.sqrt(want) / 0.8796256610
    assert layer.weight.abs().max().item() <= 2 * sigma + 1e-7
    assert torch.all(layer.bias == 0)
    assert layer.multiplier == (1.0 if param == "sp" else math.sqrt(fan_out / fan_in))


def test_mup_readout_multiplier():
    layer = Dense(256, 10, "mup", scale=1.0, readout=True)
    assert layer.init_variance == pytest.approx(1 / 256)
    assert layer.multiplier == pytest.approx(1 / 16)


# --- the paper's other models ----------------------------------------------------------------------------------

import torch.nn.functional as F  # noqa: E402

from bench.models.cnn import Myrtle  # noqa: E402
from bench.models.param import Conv, Embedding, same_padding  # noqa: E402
from bench.models.transformer import Transformer  # noqa: E402
from bench.models.wrn import WideResNet  # noqa: E402


def test_wrn_16_4_on_cifar_shape_has_2_751_146_parameters():
    assert num_params(WideResNet((3, 32, 32), 10, depth=16, width_factor=4)) == 2_751_146


def test_lm_4_128_has_1_846_016_parameters():
    """4 blocks of 12 d^2 + 13 d, embedding and untied readout V d (+ V biases), final LN 2d: about 2M."""
    d, V = 128, 4096
    want = 4 * (12 * d * d + 13 * d) + V * d + (d * V + V) + 2 * d
    model = Transformer(V, depth=4, width=d, heads=4, context=64, ln="pre")
    assert num_params(model) == want == 1_846_016


@pytest.mark.parametrize("depth,convs", [(5, 4), (7, 6), (10, 9)])
def test_myrtle_depths(depth, convs):
    model = Myrtle((3, 32, 32), 10, depth=depth, width=16)
    assert sum(isinstance(m, Conv) for m in model.modules()) == convs
    assert sum(isinstance(m, torch.nn.AvgPool2d) for m in model.modules()) == 3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_same_padding_as_jax():
    assert same_padding(32, 3, 1) == (1, 1)
    assert same_padding(32, 3, 2) == (0, 1)  # JAX pads 0 before, 1 after; PyTorch padding=1 would pad both
    assert same_padding(32, 1, 2) == (0, 0)
    assert same_padding(7, 3, 2) == (1, 1)
    conv = Conv(2, 3, 3, (8, 8), stride=2)
    x = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(conv(x), F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2))


def test_mup_conv_multiplier_scales_output_and_bias():
    conv = Conv(4, 6, 3, (10, 10), param="mup")
    with torch.no_grad():
        conv.bias.fill_(0.3)
    x = torch.randn(2, 4, 10, 10)
    assert conv.multiplier == pytest.approx(math.sqrt(6 / (10 * 10 * 4)))
    torch.testing.assert_close(conv(x), conv.multiplier * F.conv2d(x, conv.weight, conv.bias, padding=1))


def _models(param):
    """Small instances of every model, with their input and the scale of their hidden dense layers."""
    yield FCN((1, 12, 12), 10, depth=3, width=256, param=param), torch.randn(2, 1, 12, 12), 2.0
    yield Myrtle((3, 16, 16), 10, depth=5, width=32, param=param), torch.randn(2, 3, 16, 16), 2.0
    yield WideResNet((3, 16, 16), 10, width_factor=1, param=param), torch.randn(2, 3, 16, 16), 2.0
    tokens = torch.randint(0, 300, (2, 8))
    yield Transformer(300, depth=2, width=64, heads=2, context=8, param=param), tokens, 1.0


def _expected(module, param, hidden_scale, in_shape):
    """(weight variance, multiplier) from docs/paper.md section 5, written out per layer type."""
    mup = param == "mup"
    if isinstance(module, Conv):
        c_out, c_in, k, _ = module.weight.shape
        scale = 1.0 if k == 1 else 2.0  # 1x1 shortcuts: scale 1
        h, w = in_shape[-2:]
        return (scale / (k * k * c_out), math.sqrt(c_out / (h * w * c_in))) if mup else (scale / (k * k * c_in), 1.0)
    if isinstance(module, Embedding):
        d = module.weight.shape[1]
        return (1 / d, math.sqrt(d)) if mup else (1.0, 1.0)
    fan_out, fan_in = module.weight.shape
    if module.readout:
        return 1 / fan_in, (1 / math.sqrt(fan_in) if mup else 1.0)
    if mup:
        return hidden_scale / fan_out, math.sqrt(fan_out / fan_in)
    return hidden_scale / fan_in, 1.0


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_init_statistics_of_every_model(param):
    """Every layer's measured weight variance matches the formula within sampling error; truncation at 2 sigma';
    zero biases; multipliers as docs/paper.md section 5 says (convolutions from the real input feature map's size)."""
    torch.manual_seed(0)
    for model, x, hidden_scale in _models(param):
        layers = [m for m in model.modules() if isinstance(m, (Dense, Conv, Embedding))]
        assert sum(isinstance(m, Dense) and m.readout for m in layers) == 1
        inputs: dict = {}

        def record(module, args, seen=inputs):
            seen.setdefault(module, args[0].shape)

        hooks = [m.register_forward_pre_hook(record) for m in layers]
        model(x)
        for h in hooks:
            h.remove()
        for m in layers:
            # the Myrtle CNN's convolutions are SP in muP too (the authors' Myrtle_mup)
            conv_sp = isinstance(model, Myrtle) and isinstance(m, Conv)
            want_var, want_mult = _expected(m, "sp" if conv_sp else param, hidden_scale, inputs[m])
            n = m.weight.numel()
            assert m.init_variance == pytest.approx(want_var)
            assert abs(m.weight.var().item() - want_var) < 5 * want_var * math.sqrt(2 / n), (type(model), m)
            assert m.weight.abs().max().item() <= 2 * math.sqrt(want_var) / 0.8796256610 + 1e-6
            assert m.multiplier == pytest.approx(want_mult)
            if getattr(m, "bias", None) is not None:
                assert torch.all(m.bias == 0)


@pytest.mark.parametrize("ln", ["pre", "post", "pre_no_final"])
def test_transformer_is_causal_with_every_ln(ln):
    torch.manual_seed(0)
    model = Transformer(50, depth=2, width=32, heads=4, context=10, ln=ln)
    tokens = torch.randint(0, 50, (1, 10))
    changed = tokens.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 50
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])  # positions before 6 do not see the change
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    assert isinstance(model.ln_f, torch.nn.LayerNorm) == (ln == "pre")


@pytest.mark.parametrize(
    "overrides,count",
    [
        (["model=cnn", "model.width=8"], 9 * 1 * 8 + 8 + 3 * (9 * 8 * 8 + 8) + 8 * 10 + 10),
        (["model=wrn", "model.width_factor=1"], None),
    ],
)
def test_models_from_config(overrides, count):
    model = build_model(compose_cfg(*overrides).model, (1, 28, 28), 10)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    if count is not None:
        assert num_params(model) == count
