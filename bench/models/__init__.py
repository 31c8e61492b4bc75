"""Models from the `model` config group; every model takes both parameterizations (bench.models.param)."""

from __future__ import annotations

from torch import nn

from bench.models.fcn import FCN


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if cfg.name == "fcn":
        return FCN(input_shape, num_classes, cfg.depth, cfg.width, cfg.activation, cfg.param)
    raise ValueError(f"model.name={cfg.name}: unknown model")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
