"""Optimizers (from the `optimizer` config group) and learning-rate schedules."""

from __future__ import annotations

import torch

from bench.optim.schedule import Schedule, build_schedule

__all__ = ["Schedule", "build_optimizer", "build_schedule", "set_lr"]


def build_optimizer(cfg, params, lr: float) -> torch.optim.Optimizer:
    """The torch optimizer for `cfg.name` at eta_trgt = lr (absolute); the schedule sets its lr every step."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    raise ValueError(f"optimizer.name={cfg.name}: unknown optimizer")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
