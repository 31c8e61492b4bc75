"""GI-Adam and RI-Adam: torch.optim.Adam with a different initial second moment (docs/paper.md section 4).

GI-Adam: v0 = g0^2, g0 the gradient of the first training batch (spent on it, not used for an update), augmented
as training batches are.
RI-Adam (control): v0 = r^2, r ~ N(0, I) rescaled so that ||r|| = ||g0|| (one norm over all parameters).
Both keep m0 = 0, step 0 and Adam's bias correction: the state is torch.optim.Adam's own (`step`, `exp_avg`,
`exp_avg_sq`), so the optimizer's step is unchanged and anything that reads Adam's state reads this one too.
Both are optimizer initializations (bench.optim.initialization), registered under their option's name; their schemas
are bench.config's GIAdamConfig and RIAdamConfig.
"""

from __future__ import annotations

import torch

from bench import seeding
from bench.optim.initialization import OptimizerInit, register

INITS = ("gi_adam", "ri_adam")


def second_moment(grads: list[torch.Tensor], mode: str, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """v0 per parameter: g0^2 (gi_adam) or r^2 with ||r|| = ||g0|| (ri_adam)."""
    if mode == "gi_adam":
        return [g.detach().square() for g in grads]
    if mode == "ri_adam":
        # drawn on the CPU from the run's own stream, so v0 does not depend on the device
        r = [torch.randn(g.shape, generator=generator, dtype=g.dtype).to(g.device) for g in grads]
        scale = torch.cat([g.detach().reshape(-1) for g in grads]).norm() / torch.cat([x.reshape(-1) for x in r]).norm()
        return [(x * scale).square() for x in r]
    raise ValueError(f"unknown Adam initialization {mode!r} (one of {', '.join(INITS)})")


def set_second_moment(optimizer: torch.optim.Adam, v0: list[torch.Tensor]) -> None:
    """Put Adam's initial state in place: m0 = 0, v0 as given, step 0 (torch would create m0 = v0 = 0 itself)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != len(v0):
        raise ValueError(f"{len(v0)} second moments for {len(params)} parameters")
    for p, v in zip(params, v0):
        optimizer.state[p] = {
            "step": torch.tensor(0.0),  # a CPU scalar of the default dtype, as torch.optim.Adam makes it
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": v.detach().to(p.dtype).clone(memory_format=torch.preserve_format),
        }


@register("gi_adam")
class GIAdam(OptimizerInit):
    """GI-Adam: v0 = g0^2, g0 the gradient of the spent first batch (or, when no batch is spent, of a batch from the
    run's own "g0" stream), passed through `augment` (the run's augmentation from its own stream, so that the
    training augmentation is the same whatever the optimizer). Records g0's norm."""

    mode = "gi_adam"  # second_moment's

    def prepare(self, ctx) -> dict:
        sampler, augment = ctx.sampler, ctx.augment
        idx = self.spend_first_batch(sampler)
        if idx is None:
            n = len(ctx.data.x_train)
            idx = torch.randperm(n, generator=seeding.generator(self.cfg.seed, "g0"))[: sampler.batch_size]
            idx = idx.to(sampler.device)
        x, y = ctx.data.x_train[idx], ctx.data.y_train[idx]
        if augment is not None:
            x, y = augment(x, y)
        params = [p for group in ctx.optimizer.param_groups for p in group["params"]]
        grads = list(torch.autograd.grad(ctx.loss_fn(ctx.model(x), y), params))
        v0 = second_moment(grads, self.mode, seeding.generator(self.cfg.seed, "ri_adam"))
        set_second_moment(ctx.optimizer, v0)
        return {"g0_norm": torch.cat([g.reshape(-1) for g in grads]).norm().item()}


@register("ri_adam")
class RIAdam(GIAdam):
    """RI-Adam: v0 = r^2, r ~ N(0, I) from the run's "ri_adam" stream, rescaled to ||g0|| (same g0, same record)."""

    mode = "ri_adam"
