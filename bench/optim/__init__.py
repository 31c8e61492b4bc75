"""Optimizers (the `optimizer` config group), their initializations at theta0 and the warmup methods (the `schedule`
group): each module of this package registers its initializations (bench.optim.initialization) and warmup methods
(bench.optim.warmup), which the trainer builds by name."""

from __future__ import annotations

import torch

from bench.optim.schedule import Schedule, build_schedule
from bench.registry import Registry

__all__ = ["Schedule", "build_optimizer", "build_schedule", "set_lr"]


OPTIMIZERS = Registry("optimizer.name", "optimizer")  # an optimizer schema's name -> its torch optimizer builder


def build_optimizer(cfg, params, lr: float) -> torch.optim.Optimizer:
    """The torch optimizer of the option's schema (cfg is the typed optimizer config) at eta_trgt = lr (absolute);
    the schedule sets its lr every step. An option registered under no name of its own is built as the nearest
    schema it derives from: every AdamConfig option but radam (adam, gi_adam, ri_adam, one a new initialization
    adds) is plain torch.optim.Adam, only its initial state differs (bench.optim.initialization)."""
    bases = [c.name for c in type(cfg).__mro__[1:] if isinstance(vars(c).get("name"), str)]
    return OPTIMIZERS.lookup(cfg.name, *bases)(cfg, params, lr)


@OPTIMIZERS.register("sgd")
def sgd(cfg, params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


@OPTIMIZERS.register("adam")
def adam(cfg, params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps)


@OPTIMIZERS.register("radam")
def radam(cfg, params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.RAdam(params, lr=lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
