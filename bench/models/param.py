"""Initialization and parameterization (SP or muP) in one place, as the authors coded them (docs/paper.md section 5).

Weights: truncated normal within +-2 sigma', sigma' = sqrt(variance) / 0.8796256610, so that the truncated
distribution has exactly the wanted variance. Biases start at 0.
- SP:  variance scale / fan_in, no multiplier.
- muP: hidden and input layers variance scale / fan_out and output times sqrt(fan_out / fan_in);
       readout variance 1 / fan_in and output times 1 / sqrt(fan_in).
scale = 2 for hidden layers (ReLU), 1 for the readout and for 1x1 shortcut convolutions.
Convolutions (the authors' muConv): fan_in = k*k*C_in, fan_out = k*k*C_out for the variance; the muP multiplier is
sqrt(C_out / (H_in W_in C_in)), H_in x W_in the size of the input feature map.
Embeddings are dense layers on one-hot inputs (fan_in = 1): SP variance 1; muP variance 1 / width, times sqrt(width).
"""

from __future__ import annotations

import math

import torch
from torch import nn

TRUNC_STD = 0.8796256610  # std of a standard normal truncated to [-2, 2]


def trunc_normal_(w: torch.Tensor, variance: float) -> torch.Tensor:
    sigma = math.sqrt(variance) / TRUNC_STD
    return nn.init.trunc_normal_(w, mean=0.0, std=sigma, a=-2 * sigma, b=2 * sigma)


def init_variance_and_multiplier(param: str, fan_in: int, fan_out: int, scale: float, readout: bool):
    """(weight variance, output multiplier) for one layer."""
    if param == "sp":
        return scale / fan_in, 1.0
    if param == "mup":
        if readout:
            return 1.0 / fan_in, 1.0 / math.sqrt(fan_in)
        return scale / fan_out, math.sqrt(fan_out / fan_in)
    raise ValueError(f"model.param={param}: must be sp or mup")


class Dense(nn.Linear):
    """A linear layer whose output (bias included) is multiplied by a fixed parameterization multiplier."""

    def __init__(self, fan_in: int, fan_out: int, param: str = "sp", scale: float = 2.0, readout: bool = False):
        super().__init__(fan_in, fan_out)
        variance, self.multiplier = init_variance_and_multiplier(param, fan_in, fan_out, scale, readout)
        self.init_variance = variance
        self.readout = readout
        with torch.no_grad():
            trunc_normal_(self.weight, variance)
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.multiplier == 1.0 else out * self.multiplier


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """JAX/TF 'SAME' padding (before, after) of one spatial axis: stride 2 on an even size pads 0 before, 1 after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Conv2d):
    """A convolution with 'SAME' padding as in JAX, the SP/muP init, and the muP multiplier of its input size.

    in_hw is the (H, W) of the input feature map; out_hw that of the output.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        in_hw: tuple[int, int],
        stride: int = 1,
        param: str = "sp",
        scale: float = 2.0,
    ):
        super().__init__(c_in, c_out, kernel_size, stride)
        pads = [same_padding(n, kernel_size, stride) for n in in_hw]
        self.pad = (*pads[1], *pads[0])  # F.pad order: (left, right, top, bottom)
        self.out_hw = tuple(-(-n // stride) for n in in_hw)
        area = kernel_size * kernel_size
        variance, _ = init_variance_and_multiplier(param, area * c_in, area * c_out, scale, readout=False)
        self.init_variance = variance
        self.multiplier = 1.0 if param == "sp" else math.sqrt(c_out / (in_hw[0] * in_hw[1] * c_in))
        with torch.no_grad():
            trunc_normal_(self.weight, variance)
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = nn.functional.pad(x, self.pad)
        out = super().forward(x)
        return out if self.multiplier == 1.0 else out * self.multiplier


class Embedding(nn.Embedding):
    """A token embedding: a dense layer on one-hot inputs (fan_in = 1), with the SP/muP init and multiplier."""

    def __init__(self, num_embeddings: int, width: int, param: str = "sp"):
        super().__init__(num_embeddings, width)
        variance, self.multiplier = init_variance_and_multiplier(param, 1, width, 1.0, readout=False)
        self.init_variance = variance
        with torch.no_grad():
            trunc_normal_(self.weight, variance)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.multiplier == 1.0 else out * self.multiplier
