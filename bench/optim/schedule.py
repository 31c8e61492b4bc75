"""The learning-rate schedule of docs/paper.md section 1, in closed form. Steps count from s = 1.

Warmup, s <= T_wrm:  eta(s) = eta_init + (eta_trgt - eta_init) * (s / T_wrm)^k, capped at eta_trgt.
After warmup:        eta(s) = eta_min + (eta_trgt - eta_min) * [0.5 (1 + cos(pi u / T_cos))]^p,
                     u = s - T_wrm + 1, T_cos = T - T_wrm + 1, eta_min = eta_trgt / 10.
T_wrm = 0 or 1 means no warmup: the full rate from the first step.
The catapult warmup (docs/paper.md section 3, `full_ramp`) adds the whole target: eta_init + eta_trgt (s / T_wrm)^k,
capped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from bench.optim.warmup import WarmupMethod, register


@dataclass(frozen=True)
class Schedule:
    lr: float  # eta_trgt
    total_steps: int  # T
    lr_init: float = 0.0  # eta_init
    warmup_steps: int = 1  # T_wrm
    k: float = 1.0  # warmup exponent
    p: float = 0.0  # decay exponent (0 constant, 1 cosine)
    full_ramp: bool = False  # catapult warmup: the ramp adds eta_trgt, not eta_trgt - eta_init

    @property
    def lr_min(self) -> float:
        return self.lr / 10.0

    def __call__(self, s: int) -> float:
        if s < 1:
            raise ValueError(f"steps count from 1, got {s}")
        w = max(self.warmup_steps, 1)  # T_wrm = 0 is the same schedule as T_wrm = 1
        if s <= w:
            frac = (s / w) ** self.k
            rise = self.lr if self.full_ramp else self.lr - self.lr_init
            return min(self.lr_init + rise * frac, self.lr)
        if self.p == 0:
            return self.lr
        u = s - w + 1
        t_cos = self.total_steps - w + 1
        decay = 0.5 * (1.0 + math.cos(math.pi * u / t_cos))
        return self.lr_min + (self.lr - self.lr_min) * decay**self.p

    def state_dict(self) -> dict:
        """Its fields: closed form, but the catapult's eta_init (lr_init) comes from a search at theta0."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> Schedule:
        """A new schedule with the fields a checkpoint holds (frozen: its holder replaces the one it had)."""
        return cls(**{f.name: state[f.name] for f in fields(cls)})


def build_schedule(cfg, lr: float, total_steps: int, unit: float = 1.0) -> Schedule:
    """Schedule from the `schedule` config group and eta_trgt (absolute); lr_init is multiplied by `unit`
    (1/lambda0 when the optimizer's lr_unit is inverse_sharpness)."""
    return Schedule(
        lr=lr,
        total_steps=total_steps,
        lr_init=cfg.lr_init * unit,
        warmup_steps=cfg.warmup_steps,
        k=cfg.k,
        p=cfg.p,
    )


@register("linear")
@register("cosine")
class ClosedForm(WarmupMethod):
    """schedule=linear | cosine: the closed form above; nothing to prepare, no hook; its state is its fields."""

    def __init__(self, cfg, lr: float, unit: float = 1.0):
        super().__init__(cfg, lr, unit)
        self.schedule = build_schedule(cfg.schedule, lr, cfg.steps, unit)

    def lr(self, s: int) -> float:
        return self.schedule(s)

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule = Schedule.from_state(state)
