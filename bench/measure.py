"""Sharpness during training: lambda^H (and Adam's lambda^{P^-1 H}) and the optimizer's stability threshold.

`Measurer.step` is called by the step loop after backward and before the optimizer step, so the sharpness is that
of the parameters the step starts from, on the step's minibatch (SPEC section 2), and Adam's preconditioner can
include the current gradient. It reads the model and optimizer without changing them, and draws its random start
vectors from its own RNG stream: a measured run trains exactly like an unmeasured one. Each measurement's row
carries its Hessian-vector products (`sharpness_hvp`) and whether the solver converged (`sharpness_converged`; an
unconverged solve was already restarted once from a fresh random vector, bench.sharpness.top_eigenvalue).
"""

from __future__ import annotations

import math

import torch

from bench.seeding import generator
from bench.sharpness import pre_sharpness, sharpness


def threshold(optimizer_cfg, lr: float) -> float:
    """The sharpness above which the step is unstable at rate lr: 2/eta for SGD, (2 + 2 beta)/eta with momentum
    beta, (2 + 2 b1) / (eta (1 - b1)) for the Adam family (compared with lambda^{P^-1 H})."""
    if lr <= 0:
        return math.nan
    b1 = getattr(optimizer_cfg, "b1", None)
    if b1 is not None:
        return (2 + 2 * b1) / (lr * (1 - b1))
    return (2 + 2 * getattr(optimizer_cfg, "momentum", 0.0)) / lr


class Measurer:
    def __init__(self, trainer):
        self.trainer = trainer
        self.cfg = trainer.cfg.measure
        self.generator = generator(trainer.cfg.seed, "measure")
        self.vector: torch.Tensor | None = None  # the last eigenvectors: warm starts for the next measurement
        self.pre_vector: torch.Tensor | None = None
        self.adam = "betas" in trainer.optimizer.param_groups[0] and "eps" in trainer.optimizer.param_groups[0]
        self.fixed = None
        if self.cfg.every and self.cfg.batch == "fixed":
            data, size = trainer.data, trainer.cfg.batch_size
            n = len(data.x_train)
            idx = torch.randperm(n, generator=generator(trainer.cfg.seed, "measure_batch"))[: size or n]
            self.fixed = data.x_train[idx.to(trainer.device)], data.y_train[idx.to(trainer.device)]

    def active(self, s: int) -> bool:
        """Measuring is on and step s is not past `until`: the step's loss is logged (batch_loss)."""
        return self.cfg.every > 0 and (self.cfg.until == 0 or s <= self.cfg.until)

    def due(self, s: int) -> bool:
        """The sharpness is measured at steps 1, 1 + every, 1 + 2 every, ... up to `until`."""
        return self.active(s) and (s - 1) % self.cfg.every == 0

    def step(self, s: int, x: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None:
        """Log the step's loss and, when due, measure: call after backward, before the optimizer step."""
        if not self.active(s):
            return
        t = self.trainer
        batch_loss = loss.item()
        row = {"batch_loss": batch_loss, "threshold": threshold(t.cfg.optimizer, t.schedule(s))}
        if self.fixed is not None:
            x, y = self.fixed
        opts = dict(tol=self.cfg.tol, max_iter=self.cfg.max_iter, float64=self.cfg.float64, generator=self.generator)
        if self.due(s) and math.isfinite(batch_loss):
            e = sharpness(t.model, t.loss_fn, x, y, v0=self.vector, **opts)
            self.vector = e.vector
            row.update(sharpness=e.value, sharpness_hvp=e.n_hvp, sharpness_converged=e.converged)
            if self.adam:
                p = pre_sharpness(t.model, t.loss_fn, x, y, t.optimizer, v0=self.pre_vector, **opts)
                self.pre_vector = p.vector
                row.update(pre_sharpness=p.value, pre_sharpness_hvp=p.n_hvp, pre_sharpness_converged=p.converged)
        t.log_row(s, **row)
