"""WRN-16-k with LayerNorm in place of BatchNorm, as the authors coded it (docs/paper.md section 5).

stem: conv3x3 (16 channels) -> LN -> ReLU; 3 stages x 2 blocks of 16 * 2^s * k channels; a block is
conv3x3 (stride 2 in the first block of stages 1 and 2) -> LN -> ReLU -> conv3x3 -> LN, plus a 1x1 convolution
shortcut (same stride, scale 1) where the shape changes, then ReLU; head: global average pool -> dense readout.
LN normalizes over channels at each position (flax's LayerNorm on NHWC), eps 1e-6, learnable scale and bias.
Every convolution is bench.models.param.Conv ('SAME' padding as in JAX; the muP multiplier from its input size).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models.cnn import GlobalMean
from bench.models.param import Conv, Dense

STAGE_SIZES = {16: (2, 2, 2)}


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, in_hw, stride: int, param: str):
        super().__init__()
        self.conv1 = Conv(c_in, c_out, 3, in_hw, stride, param)
        self.ln1 = ChannelLayerNorm(c_out)
        self.conv2 = Conv(c_out, c_out, 3, self.conv1.out_hw, 1, param)
        self.ln2 = ChannelLayerNorm(c_out)
        self.shortcut = None
        if c_in != c_out or stride != 1:
            self.shortcut = Conv(c_in, c_out, 1, in_hw, stride, param, scale=1.0)
        self.out_hw = self.conv1.out_hw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.ln1(self.conv1(x)))
        y = self.ln2(self.conv2(y))
        return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class WideResNet(nn.Sequential):
    def __init__(
        self,
        input_shape,
        num_classes: int,
        depth: int = 16,
        width_factor: int = 4,
        param: str = "sp",
        num_filters: int = 16,
    ):
        c_in, *hw = input_shape
        stem = Conv(c_in, num_filters, 3, tuple(hw), 1, param)
        layers: list[nn.Module] = [stem, ChannelLayerNorm(num_filters), nn.ReLU()]
        c_in, hw = num_filters, stem.out_hw
        for stage, num_blocks in enumerate(STAGE_SIZES[depth]):
            c_out = num_filters * 2**stage * width_factor
            for block in range(num_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(Block(c_in, c_out, hw, stride, param))
                c_in, hw = c_out, layers[-1].out_hw
        layers += [GlobalMean(), Dense(c_in, num_classes, param, scale=1.0, readout=True)]
        super().__init__(*layers)
