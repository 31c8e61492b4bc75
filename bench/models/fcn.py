"""FCN-d-n: d dense layers, d - 1 hidden of width n with an activation, then a linear readout (docs/paper.md
section 5)."""

from __future__ import annotations

import math

from torch import nn

from bench.models.param import Dense

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "linear": nn.Identity}


class FCN(nn.Sequential):
    def __init__(self, input_shape, num_classes: int, depth=4, width=512, activation="relu", param="sp"):
        fan_in = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(depth - 1):
            layers += [Dense(fan_in, width, param, scale=2.0), ACTIVATIONS[activation]()]
            fan_in = width
        layers.append(Dense(fan_in, num_classes, param, scale=1.0, readout=True))
        super().__init__(*layers)
