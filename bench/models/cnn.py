"""Myrtle CNNs (5, 7, 10 layers) as the authors coded them: 3x3 convolutions with ReLU, 2x2 average pooling after
the convolutions listed in POOL_AFTER, a global mean over space, then a dense readout (docs/paper.md section 5).

Myrtle-d has d - 1 convolutions of `width` channels and the readout. muP is the authors' `Myrtle_mup`
(why-warmup, vision/*/utils/model_utils.py): SP convolutions (variance 2 / fan_in, no multiplier) and the muP
readout (variance 1 / fan_in, times 1 / sqrt(fan_in)). Their muConv multiplier sqrt(C_out / (H_in W_in C_in)) on
every convolution of this network without normalization shrinks the signal by that factor per layer (output rms
about 7e-7 at init on 32x32 images); the WRN, whose LayerNorms undo it, keeps muConv.

Not followed: their CNN script (vision/phase-diagrams/train_cnn_lobpcg.py) also divides muP inputs by sqrt(H W C)
after per-sample standardization. At init this network is positively homogeneous (ReLU, zero biases, average
pools), so that divides the output by exactly sqrt(H W C): rms 0.060 -> 0.0021 on mnist5k (Myrtle-5-64). As
published the script cannot run (its model table names Myrtle5_int..., which its model_utils does not define), so
no published run used the scaling, and it is not an option here: a new model key would change every CNN run's
identity (docs/fidelity.md).
"""

from __future__ import annotations

from torch import nn

from bench.models.param import Conv, Dense

# depth -> indices (from 0) of the convolutions followed by a 2x2 average pool
POOL_AFTER = {5: (1, 2, 3), 7: (1, 3, 5), 10: (2, 5, 8)}


class GlobalMean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class Myrtle(nn.Sequential):
    def __init__(self, input_shape, num_classes: int, depth: int = 5, width: int = 64, param: str = "sp"):
        c_in, *hw = input_shape
        layers: list[nn.Module] = []
        for i in range(depth - 1):
            conv = Conv(c_in, width, 3, tuple(hw), param="sp", scale=2.0)  # SP in both parameterizations
            layers += [conv, nn.ReLU()]
            c_in = width
            if i in POOL_AFTER[depth]:
                layers.append(nn.AvgPool2d(2))  # 'VALID' pooling, as flax's avg_pool
                hw = [n // 2 for n in hw]
        layers += [GlobalMean(), Dense(width, num_classes, param, scale=1.0, readout=True)]
        super().__init__(*layers)
