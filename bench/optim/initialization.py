"""The optimizer-initialization interface and its registry: how the trainer sets the optimizer's initial state at
theta0 without knowing the method (docs/paper.md section 4: GI-Adam, RI-Adam).

An initialization is an option of the `optimizer` config group. Its class is registered under the option's name with
`@register("name")` (and, for an option with a schema of its own, `schema=` its config dataclass, which then goes into
bench.config.GROUPS and Hydra's ConfigStore from the method's own module). `build_init` imports every module of
bench/optim, so a new initialization is one new module there plus one YAML in conf/optimizer: nothing else is edited.
An option with no registered initialization (sgd, adam, radam) keeps the optimizer's own initial state.

The interface (`OptimizerInit`):
- `__init__(cfg)`: cfg the run's typed Config;
- `prepare(theta0)` once at theta0, after the optimizer is built and before the warmup method's `prepare`: spends
  the first training batch (`theta0.sampler`) when optimizer.spend_first_batch (the authors do, for every Adam
  variant), puts the optimizer's initial state in place and returns its records for result.json (e.g. g0_norm).
  `theta0` is bench.optim.warmup.Theta0; its `augment` is an augmentation from its own stream.
Nothing to checkpoint: what it sets is the optimizer's state, which the checkpoint holds.
"""

from __future__ import annotations

from bench.registry import Registry

INITS = Registry("optimizer.name", "optimizer initialization", group="optimizer")  # optimizer.name -> its class
register = INITS.register  # class decorator: @register(name, schema=its config dataclass)


class OptimizerInit:
    """Base class, and the initialization of every option without one of its own: the optimizer's own state (torch's
    m0 = v0 = 0 for Adam), after spending the first batch where configured; no records."""

    def __init__(self, cfg):
        self.cfg = cfg

    def spend_first_batch(self, sampler):
        """The first training batch's indices when optimizer.spend_first_batch (training starts on the next batch),
        else None."""
        return sampler.next() if getattr(self.cfg.optimizer, "spend_first_batch", False) else None

    def prepare(self, theta0) -> dict:
        self.spend_first_batch(theta0.sampler)
        return {}


def build_init(cfg) -> OptimizerInit:
    """The initialization of cfg.optimizer.name (the base class's when none is registered under it)."""
    from bench.optim.warmup import discover

    discover()  # every module of bench/optim registers its initializations and warmup methods
    return INITS.get(cfg.optimizer.name, OptimizerInit)(cfg)
