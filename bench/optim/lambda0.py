"""lambda0 as a prepare step: rates in units of the initial sharpness (optimizer.lr_unit=inverse_sharpness)."""

from __future__ import annotations

import logging

from bench.data.augment import build_augment
from bench.seeding import generator
from bench.sharpness import initial_sharpness, lambda0_batches

log = logging.getLogger(__name__)


def prepare_lambda0(cfg, model, loss_fn, data, device) -> tuple[float, dict]:
    """The rate unit and its records: (1, {}) for absolute rates; (1/lambda0, {lambda0, lambda0_converged}) for
    rates in units of the initial sharpness (result["lr"] stays the absolute eta_trgt)."""
    if cfg.optimizer.lr_unit == "absolute":
        return 1.0, {}
    stream = generator(cfg.seed, "lambda0")
    # augmented as training batches are (the authors draw them from the training stream), from own streams
    augment = build_augment(cfg.dataset, cfg.seed, device, stream="lambda0_augment")
    batches = lambda0_batches(
        data.x_train, data.y_train, cfg.batch_size, cfg.optimizer.lambda0_batches, stream, augment
    )
    lambda0, converged = initial_sharpness(model, loss_fn, batches, stream)
    log.info("lambda0 = %.4g: eta_trgt = %g / lambda0 = %.4g", lambda0, cfg.optimizer.lr, cfg.optimizer.lr / lambda0)
    return 1.0 / lambda0, {"lambda0": lambda0, "lambda0_converged": converged}
