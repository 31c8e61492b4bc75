"""The warmup-method interface and its registry: how the trainer sets the learning rate without knowing the method.

A warmup method is the option of the `schedule` config group. Its class is registered under the option's name with
`@register("name")` (and, for an option with keys of its own, `schema=` its config dataclass, which then goes into
bench.config.GROUPS and Hydra's ConfigStore from the method's own module). `discover` imports every module of
bench/optim, so a new method is one new module there plus one YAML in conf/schedule: nothing else is edited; or a
module of the user's own package named by an entry point of the group `warmup_bench.methods` (PLUGINS), which
`discover` loads too, plus its YAML in the user's own --config-dir.

The interface (`WarmupMethod`):
- `__init__(cfg, lr, unit)`: cfg the run's typed Config, lr = eta_trgt (absolute), unit = 1 or 1/lambda0;
- `check(cfg)` (class method): a problem with the rest of the config, refused by bench.config.validate;
- `prepare(theta0)` once at theta0, after the optimizer's own initialization (GI-/RI-Adam): returns its records for
  result.json (e.g. eta_c);
- `lr(s)`: the rate of step s (counted from 1); calling the method is the same;
- `after_backward(s, loss, loss_of)`: optional hook, the step's gradients are in .grad and the update is not made
  yet; `loss` is L(theta_t) on the step's batch (a tensor), `loss_of()` recomputes it (the persistent catapult
  re-searches eta_c with it);
- `reads_loss` (class attribute, default False): True when `after_backward` reads the loss on the host at every
  step (a device sync), so that its rate depends on the losses seen. The step loop then checks divergence at every
  step too (it costs nothing more), so the method never acts on a step after a diverged one; otherwise the loop
  reads the losses back only every `sync_every` steps (bench/train.py), and `lr(s)` must not depend on them;
- `state_dict()` / `load_state_dict()`: the checkpoint component "schedule".
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from bench.registry import Registry

log = logging.getLogger(__name__)

METHODS = Registry("schedule.name", "warmup method", group="schedule")  # schedule.name -> its class
register = METHODS.register  # class decorator: @register(name, schema=its config dataclass)


@dataclass
class Theta0:
    """What every step at theta0 sees, `prepare(theta0) -> records` (lambda0, the optimizer's initialization, the
    warmup method): the run's parts so far (no optimizer yet for lambda0) and its records so far (result.json's,
    e.g. lambda0; a method that keeps counters during training, the persistent catapult, updates them here); the
    training sampler and an augmentation from its own stream (an initialization may spend the first batch)."""

    model: Any
    optimizer: Any
    loss_fn: Any
    data: Any
    records: dict = field(default_factory=dict)
    sampler: Any = None
    augment: Any = None


class WarmupMethod:
    """Base class: no records, no hook, no state beyond what a subclass adds."""

    # why points of this method are never packed (bench/ensemble.py), or None: packable
    not_packed: str | None = None
    # after_backward reads the loss on the host every step: the step loop then checks divergence every step
    reads_loss: bool = False

    def __init__(self, cfg, lr: float, unit: float = 1.0):
        self.cfg, self.lr_trgt, self.unit = cfg, lr, unit

    @classmethod
    def check(cls, cfg) -> str | None:
        """A problem of this method with the rest of the run's config, in one line (None: fine); bench.config.validate
        calls it, so that it is refused before any compute."""
        return None

    def prepare(self, theta0: Theta0) -> dict:
        return {}

    def lr(self, s: int) -> float:
        raise NotImplementedError

    def __call__(self, s: int) -> float:
        return self.lr(s)

    def after_backward(self, s: int, loss, loss_of) -> None:
        """Step s after backward, before the update: `loss` the step's loss tensor (a method that reads it with
        .item() pays a device sync), `loss_of()` recomputes it at the current parameters."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# the entry point group of packages outside bench/ that register warmup methods or initializations (each entry point
# names a module, or an object of one, whose import registers them as a bench/optim module does)
PLUGINS = "warmup_bench.methods"
_plugins: dict[str, str | None] = {}  # "problem": None once every entry point loaded, else its one line


def discover() -> None:
    """Import every module of bench/optim and every entry point of PLUGINS: each registers its methods and
    initializations (idempotent). A plugin that cannot be loaded is a ConfigError naming its entry point, at every
    call (bench.config.register calls this at import, where Hydra has yet to compose; the run's check_config
    raises it)."""
    import bench.optim as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    if "problem" not in _plugins:  # once per process: entry_points() scans every installed distribution
        _plugins["problem"] = load_plugins()
    if problem := _plugins["problem"]:
        from bench.errors import ConfigError

        raise ConfigError(problem)


def load_plugins() -> str | None:
    """Load the entry points of PLUGINS; one line for the first that fails (None: all loaded)."""
    for ep in importlib.metadata.entry_points(group=PLUGINS):
        try:
            ep.load()
        except Exception as e:
            why = (str(e).strip().splitlines() or [""])[0]
            return f"entry point {ep.name} = {ep.value} (group {PLUGINS}) cannot be loaded: {type(e).__name__}: {why}"
    return None


def plugin_problem() -> str | None:
    """The line of a plugin that could not be loaded, or None."""
    return _plugins.get("problem")


def check_config(cfg) -> None:
    """ConfigError (one line) when no method has the name cfg.schedule.name or the method refuses the config."""
    from bench.errors import ConfigError

    discover()
    name = cfg.schedule.name
    if name not in METHODS:
        raise ConfigError(f"schedule.name={name}: no warmup method of that name (one of {', '.join(sorted(METHODS))})")
    if problem := unread_key(cfg.schedule) or METHODS[name].check(cfg):
        raise ConfigError(problem)


def reads(schema: type) -> tuple[str, ...]:
    """The schedule keys a method reads: its schema's own `reads`; a schema that declares none reads the keys it adds
    to the schema it extends, not those it inherits."""
    if "reads" in vars(schema):
        keys = tuple(schema.reads)
    else:
        keys = tuple(k for k in vars(schema).get("__annotations__", {}) if k not in ("name", "reads"))
    return keys + ("warmup_fraction",) if "warmup_steps" in keys else keys  # the fraction sets warmup_steps


def unread_key(schedule) -> str | None:
    """One line for the first key of the schedule's schema that its method does not read yet is set away from its
    default (a value that would be ignored silently); None when there is none."""
    read = reads(type(schedule))
    derived = {"warmup_steps"} if getattr(schedule, "warmup_fraction", None) is not None else set()  # its line
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name)
        if f.name not in ("name", *derived) and f.name not in read and value != f.default:
            hint = "" if "reads" in vars(type(schedule)) else f", or add it to {type(schedule).__name__}.reads"
            return f"schedule.{f.name}={value}: is not used by schedule={schedule.name} (leave it {f.default}{hint})"
    return None


def resolved(schedule) -> dict:
    """result.json's record of T_wrm where schedule.warmup_fraction set it (config.yaml keeps the fraction)."""
    if getattr(schedule, "warmup_fraction", None) is None:
        return {}
    return {"warmup_steps": schedule.warmup_steps}


def build_warmup(cfg, lr: float, unit: float = 1.0) -> WarmupMethod:
    """The method of cfg.schedule.name for eta_trgt = lr (absolute); `prepare` it at theta0 before training."""
    discover()
    return METHODS.lookup(cfg.schedule.name)(cfg, lr, unit)
