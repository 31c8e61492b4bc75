"""lambda0 as a prepare step: rates in units of the initial sharpness (optimizer.lr_unit=inverse_sharpness)."""

from __future__ import annotations

import logging

from bench.data.augment import build_augment
from bench.seeding import generator
from bench.sharpness import initial_sharpness, lambda0_batches

log = logging.getLogger(__name__)


class Lambda0:
    """The first step at theta0, before the optimizer is built: its `unit` is 1 for absolute rates, 1/lambda0 for
    rates in units of the initial sharpness (result["lr"] stays the absolute eta_trgt)."""

    def __init__(self, cfg, device):
        self.cfg, self.device = cfg, device
        self.unit = 1.0

    def prepare(self, ctx) -> dict:
        """ctx: bench.optim.warmup.Theta0 (its model, loss and data). Returns the records {lambda0,
        lambda0_converged}, none for absolute rates."""
        cfg = self.cfg
        if cfg.optimizer.lr_unit == "absolute":
            return {}
        stream = generator(cfg.seed, "lambda0")
        # augmented as training batches are (the authors draw them from the training stream), from own streams
        augment = build_augment(cfg.dataset, cfg.seed, self.device, stream="lambda0_augment")
        data = ctx.data
        batches = lambda0_batches(
            data.x_train, data.y_train, cfg.batch_size, cfg.optimizer.lambda0_batches, stream, augment
        )
        lambda0, converged = initial_sharpness(ctx.model, ctx.loss_fn, batches, stream)
        lr = cfg.optimizer.lr
        log.info("lambda0 = %.4g: eta_trgt = %g / lambda0 = %.4g", lambda0, lr, lr / lambda0)
        self.unit = 1.0 / lambda0
        return {"lambda0": lambda0, "lambda0_converged": converged}
