"""Untuned warmup for Adam (Ma & Yarats 2021, "On the adequacy of untuned warmup for adaptive optimization").

The warmup length comes from Adam's b2 (optimizer.b2), not from a tuned T_wrm:
- exponential: eta(s) = eta_trgt (1 - exp(-(1 - b2) s));
- linear:      eta(s) = eta_trgt min(1, s / T), T = 2 / (1 - b2) steps (2000 at b2 = 0.999).
Steps count from s = 1. After the warmup, nothing else: this method is the whole schedule (constant eta_trgt).

The whole method lives here (this module and conf/schedule/untuned.yaml): its schema and its class register
themselves with the config groups and the warmup registry (bench.optim.warmup).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from bench.config import ScheduleConfig, require_choice
from bench.errors import ConfigError
from bench.optim.warmup import WarmupMethod, register


@dataclass
class UntunedConfig(ScheduleConfig):
    name: str = "untuned"
    form: str = "exponential"  # exponential: eta_trgt (1 - exp(-(1 - b2) s)); linear: over 2 / (1 - b2) steps
    reads: ClassVar[tuple[str, ...]] = ("form",)  # not lr_init, warmup_steps, k, p: refused unless at their defaults

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("schedule.form", self.form, ("exponential", "linear"))


@register("untuned", schema=UntunedConfig)
class Untuned(WarmupMethod):
    @classmethod
    def check(cls, cfg) -> str | None:
        if not hasattr(cfg.optimizer, "b2"):
            return f"schedule=untuned: needs an Adam optimizer (its b2), not optimizer={cfg.optimizer.name}"
        return None

    def __init__(self, cfg, lr: float, unit: float = 1.0):
        super().__init__(cfg, lr, unit)
        if problem := self.check(cfg):
            raise ConfigError(problem)
        self.b2, self.form = cfg.optimizer.b2, cfg.schedule.form

    @property
    def warmup_steps(self) -> float:
        """The linear form's T = 2 / (1 - b2)."""
        return 2.0 / (1.0 - self.b2)

    def lr(self, s: int) -> float:
        if s < 1:
            raise ValueError(f"steps count from 1, got {s}")
        if self.form == "exponential":
            return self.lr_trgt * -math.expm1(-(1.0 - self.b2) * s)
        return self.lr_trgt * min(1.0, s / self.warmup_steps)

    def prepare(self, ctx) -> dict:
        return {"untuned_warmup_steps": self.warmup_steps}  # T = 2 / (1 - b2), the warmup's own time scale
