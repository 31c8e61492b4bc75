"""Cosine-shaped warmup: the rate rises along half a cosine period instead of a straight line.

Warmup, s <= T_wrm:  eta(s) = eta_init + (eta_trgt - eta_init) (1 - cos(pi s / T_wrm)) / 2
After warmup:        the decay of p, as schedule=linear | cosine (bench/optim/schedule.py).
Steps count from s = 1; T_wrm = 0 or 1 means no warmup (eta_trgt from the first step). The shape is the half-cosine
ramp of common scheduler libraries (e.g. transformers' and timm's cosine warmups); k is not read.

The whole method lives here (this module and conf/schedule/cosine_warmup.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from bench.config import ScheduleConfig
from bench.optim.schedule import ClosedForm
from bench.optim.warmup import register


@dataclass
class CosineWarmupConfig(ScheduleConfig):
    name: str = "cosine_warmup"
    reads: ClassVar[tuple[str, ...]] = ("lr_init", "warmup_steps", "p")  # k must keep its default


@register("cosine_warmup", schema=CosineWarmupConfig)
class CosineWarmup(ClosedForm):
    """The closed-form schedule with the half-cosine ramp in place of (s / T_wrm)^k; its state is its fields."""

    def lr(self, s: int) -> float:
        sched = self.schedule
        t_wrm = max(sched.warmup_steps, 1)
        if not 1 <= s <= t_wrm:
            return sched(s)  # after warmup (and s < 1, refused there)
        return sched.lr_init + (sched.lr - sched.lr_init) * (1.0 - math.cos(math.pi * s / t_wrm)) / 2.0
