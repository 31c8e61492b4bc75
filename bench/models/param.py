"""Initialization and parameterization (SP or muP) in one place, as the authors coded them (SPEC section 5).

Weights: truncated normal within +-2 sigma', sigma' = sqrt(variance) / 0.8796256610, so that the truncated
distribution has exactly the wanted variance. Biases start at 0.
- SP:  variance scale / fan_in, no multiplier.
- muP: hidden and input layers variance scale / fan_out and output times sqrt(fan_out / fan_in);
       readout variance 1 / fan_in and output times 1 / sqrt(fan_in).
scale = 2 for hidden layers (ReLU), 1 for the readout.
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
        with torch.no_grad():
            trunc_normal_(self.weight, variance)
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.multiplier == 1.0 else out * self.multiplier
