"""Models from the `model` config group; every model takes both parameterizations (bench.models.param)."""

from __future__ import annotations

from torch import nn

from bench.models.cnn import Myrtle
from bench.models.fcn import FCN
from bench.models.transformer import Transformer
from bench.models.wrn import WideResNet
from bench.registry import Registry

MODELS = Registry("model.name", "model")  # model.name -> its builder(cfg, input_shape, num_classes)


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """input_shape: one example's shape ((C, H, W) images, (context,) token windows); num_classes: the number of
    classes, or the vocabulary size for a language model."""
    return MODELS.lookup(cfg.name)(cfg, input_shape, num_classes)


@MODELS.register("fcn")
def fcn(cfg, input_shape, num_classes) -> nn.Module:
    return FCN(input_shape, num_classes, cfg.depth, cfg.width, cfg.activation, cfg.param)


@MODELS.register("cnn")
def cnn(cfg, input_shape, num_classes) -> nn.Module:
    return Myrtle(input_shape, num_classes, cfg.depth, cfg.width, cfg.param)


@MODELS.register("wrn")
def wrn(cfg, input_shape, num_classes) -> nn.Module:
    return WideResNet(input_shape, num_classes, cfg.depth, cfg.width_factor, cfg.param)


@MODELS.register("transformer")
def transformer(cfg, input_shape, num_classes) -> nn.Module:
    return Transformer(num_classes, cfg.depth, cfg.width, cfg.heads, cfg.context, cfg.ln, cfg.param)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
