"""Optimizers (from the `optimizer` config group) and the warmup methods (the `schedule` group): each module of this
package registers its methods with bench.optim.warmup, which the trainer builds them through by name."""

from __future__ import annotations

import torch

from bench.optim.adam_init import init_adam_state
from bench.optim.schedule import Schedule, build_schedule

__all__ = ["Schedule", "build_optimizer", "build_schedule", "init_adam_state", "set_lr"]


def build_optimizer(cfg, params, lr: float) -> torch.optim.Optimizer:
    """The torch optimizer for `cfg.name` at eta_trgt = lr (absolute); the schedule sets its lr every step.

    gi_adam and ri_adam are plain torch.optim.Adam: only their initial state differs (`init_adam_state`)."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name in ("adam", "gi_adam", "ri_adam"):
        return torch.optim.Adam(params, lr=lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps)
    if cfg.name == "radam":
        return torch.optim.RAdam(params, lr=lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps)
    raise ValueError(f"optimizer.name={cfg.name}: unknown optimizer")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
