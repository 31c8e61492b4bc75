"""Sharpness during training: lambda^H (and Adam's lambda^{P^-1 H}) and the optimizer's stability threshold.

`Measurer.step` is called by the step loop after backward and before the optimizer step, so the sharpness is that
of the parameters the step starts from, on the step's minibatch (docs/paper.md section 2), and Adam's preconditioner can
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


def preconditioned(optimizer_cfg) -> bool:
    """Whether the optimizer has Adam's diagonal preconditioner P (its config has b1, b2, eps): adam, gi_adam,
    ri_adam and radam. RAdam is measured as Adam (lambda^{P^-1 H}, Adam's threshold) at every step, although its
    first steps (rho_t <= 5) are unrectified momentum-SGD steps without P."""
    return all(hasattr(optimizer_cfg, key) for key in ("b1", "b2", "eps"))


def fixed_batch(cfg, data, device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """measure.batch=fixed: one batch of batch_size from the own "measure_batch" stream (None otherwise)."""
    if not (cfg.measure.every and cfg.measure.batch == "fixed"):
        return None
    n = len(data.x_train)
    idx = torch.randperm(n, generator=generator(cfg.seed, "measure_batch"))[: cfg.batch_size or n].to(device)
    return data.x_train[idx], data.y_train[idx]


class Measurer:
    """Explicit inputs: the measure config, the model, loss and optimizer it reads (never changes), `threshold(s)`
    (the stability threshold at step s's rate), whether the optimizer is preconditioned (then lambda^{P^-1 H} too),
    `log_row(step, **values)` where its values go, the run's seed (its own RNG streams) and the fixed batch."""

    def __init__(self, cfg, model, loss_fn, optimizer, threshold, preconditioned: bool, log_row, seed: int, fixed=None):
        self.cfg = cfg
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.threshold, self.adam, self.log_row = threshold, preconditioned, log_row
        self.generator = generator(seed, "measure")
        self.vector: torch.Tensor | None = None  # the last eigenvectors: warm starts for the next measurement
        self.pre_vector: torch.Tensor | None = None
        self.fixed = fixed

    def state_dict(self) -> dict:
        """Its RNG and the warm starts of the next measurement (the fixed batch is drawn again from its seed)."""

        def cpu(v):
            return None if v is None else v.detach().cpu()

        return {"generator": self.generator.get_state(), "vector": cpu(self.vector), "pre_vector": cpu(self.pre_vector)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        device = next(self.model.parameters()).device
        self.vector = None if state["vector"] is None else state["vector"].to(device)
        self.pre_vector = None if state["pre_vector"] is None else state["pre_vector"].to(device)

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
        batch_loss = loss.item()
        row = {"batch_loss": batch_loss, "threshold": self.threshold(s)}
        if self.fixed is not None:
            x, y = self.fixed
        opts = dict(tol=self.cfg.tol, max_iter=self.cfg.max_iter, float64=self.cfg.float64, generator=self.generator)
        if self.due(s) and math.isfinite(batch_loss):
            e = sharpness(self.model, self.loss_fn, x, y, v0=self.vector, **opts)
            self.vector = e.vector
            row.update(sharpness=e.value, sharpness_hvp=e.n_hvp, sharpness_converged=e.converged)
            if self.adam:
                p = pre_sharpness(self.model, self.loss_fn, x, y, self.optimizer, v0=self.pre_vector, **opts)
                self.pre_vector = p.vector
                row.update(pre_sharpness=p.value, pre_sharpness_hvp=p.n_hvp, pre_sharpness_converged=p.converged)
        self.log_row(s, **row)
