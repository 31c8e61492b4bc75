"""Models: parameter counts and the initialization of SPEC section 5."""

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
