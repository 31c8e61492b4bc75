"""Models from the `model` config group; every model takes both parameterizations (bench.models.param)."""

from __future__ import annotations

from torch import nn

from bench.models.cnn import Myrtle
from bench.models.fcn import FCN
from bench.models.transformer import Transformer
from bench.models.wrn import WideResNet


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """input_shape: one example's shape ((C, H, W) images, (context,) token windows); num_classes: the number of
    classes, or the vocabulary size for a language model."""
    if cfg.name == "fcn":
        return FCN(input_shape, num_classes, cfg.depth, cfg.width, cfg.activation, cfg.param)
    if cfg.name == "cnn":
        return Myrtle(input_shape, num_classes, cfg.depth, cfg.width, cfg.param)
    if cfg.name == "wrn":
        return WideResNet(input_shape, num_classes, cfg.depth, cfg.width_factor, cfg.param)
    if cfg.name == "transformer":
        return Transformer(num_classes, cfg.depth, cfg.width, cfg.heads, cfg.context, cfg.ln, cfg.param)
    raise ValueError(f"model.name={cfg.name}: unknown model")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
