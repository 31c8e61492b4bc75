"""Optimizers (the `optimizer` config group), their initializations at theta0 and the warmup methods (the `schedule`
group): each module of this package registers its initializations (bench.optim.initialization) and warmup methods
(bench.optim.warmup), which the trainer builds by name."""

from __future__ import annotations

import torch

from bench.optim.schedule import Schedule, build_schedule

__all__ = ["Schedule", "build_optimizer", "build_schedule", "set_lr"]


def build_optimizer(cfg, params, lr: float) -> torch.optim.Optimizer:
    """The torch optimizer of the option's schema (cfg is the typed optimizer config) at eta_trgt = lr (absolute);
    the schedule sets its lr every step.

    Every AdamConfig option but radam (adam, gi_adam, ri_adam, one a new initialization adds) is plain
    torch.optim.Adam: only its initial state differs (bench.optim.initialization)."""
    from bench.config import AdamConfig, RAdamConfig, SGDConfig

    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if isinstance(cfg, RAdamConfig):
        return torch.optim.RAdam(params, lr=lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps)
    if isinstance(cfg, AdamConfig):
        return torch.optim.Adam(params, lr=lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps)
    raise ValueError(f"optimizer.name={cfg.name}: unknown optimizer (its schema {type(cfg).__name__})")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
