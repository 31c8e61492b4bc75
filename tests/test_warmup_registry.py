"""Warmup methods are found by name through one registry (as initializations, models and optimizers are); the
step loops name no method. A method's schema declares the keys it reads: the others are refused in one line when set
(a made-up method, as its author would write it)."""

import math
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from hydra.core.config_store import ConfigStore

import bench
from bench.config import GROUPS, ScheduleConfig, validate
from bench.errors import ConfigError
from bench.models import build_model
from bench.optim import build_optimizer
from bench.optim.initialization import INITS
from bench.optim.warmup import METHODS, WarmupMethod, build_warmup, register
from bench.registry import Registry
from tests.conftest import compose_cfg

ROOT = Path(bench.__file__).parent.parent
OPTIONS = sorted(p.stem for p in (ROOT / "conf" / "schedule").glob("*.yaml"))


@pytest.mark.parametrize("option", OPTIONS)
def test_every_schedule_option_is_a_registered_method(option):
    cfg = validate(compose_cfg("optimizer=adam", f"schedule={option}", "device=cpu"))
    method = build_warmup(cfg, 0.01)
    assert isinstance(method, WarmupMethod)
    assert type(method) is METHODS[cfg.schedule.name]


@pytest.mark.parametrize("loop", ["bench/train.py", "bench/ensemble.py"])
def test_the_step_loops_name_no_method(loop):
    source = (ROOT / loop).read_text()
    named = [cls.__name__ for cls in METHODS.values() if cls.__name__ in source]
    assert named == [], f"{loop} names {named}: it should call the WarmupMethod interface only"
    assert "PersistentCatapult" not in source


@dataclass
class SqrtConfig(ScheduleConfig):
    name: str = "sqrt_test"
    reads: ClassVar[tuple[str, ...]] = ("lr_init", "warmup_steps")  # not k, not p


class Sqrt(WarmupMethod):
    """A square-root warmup written as a new method (the same as schedule=linear with schedule.k=0.5)."""

    def lr(self, s: int) -> float:
        t = self.cfg.schedule.warmup_steps
        lr0 = self.cfg.schedule.lr_init * self.unit
        return lr0 + (self.lr_trgt - lr0) * math.sqrt(min(s, t) / t) if t > 1 else self.lr_trgt


@dataclass
class SilentConfig(ScheduleConfig):
    """A schema that declares no `reads`: it reads only the keys it adds (here: width)."""

    name: str = "silent_test"
    width: int = 3


@pytest.fixture
def made_up_methods():
    """Two methods registered as their module would register them, taken out again (other tests list the options)."""
    register("sqrt_test", schema=SqrtConfig)(Sqrt)
    register("silent_test", schema=SilentConfig)(type("Silent", (Sqrt,), {}))
    yield
    for name in ("sqrt_test", "silent_test"):
        METHODS.pop(name)
        GROUPS["schedule"].pop(name)
        ConfigStore.instance().repo["schedule"].pop(f"base_{name}.yaml")


@pytest.mark.parametrize(
    "args,line",
    [
        (["schedule.k=3"], "schedule.k=3.0: is not used by schedule=sqrt_test (leave it 1.0)"),
        (["schedule.p=1"], "schedule.p=1.0: is not used by schedule=sqrt_test (leave it 0.0)"),
        (
            ["schedule=base_silent_test", "schedule.warmup_steps=64"],
            "schedule.warmup_steps=64: is not used by schedule=silent_test "
            "(leave it 1, or add it to SilentConfig.reads)",
        ),
    ],
)
def test_a_key_the_method_does_not_read_is_refused_in_one_line(made_up_methods, args, line):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg("schedule=base_sqrt_test", *args, "device=cpu"))
    assert str(e.value) == line


def test_a_new_method_reads_its_declared_keys_and_matches_the_linear_schedule_at_k_half(made_up_methods):
    keys = ["optimizer.lr=2", "schedule.warmup_steps=16", "schedule.lr_init=0.5", "device=cpu"]
    sqrt = build_warmup(validate(compose_cfg("schedule=base_sqrt_test", *keys)), 2.0)
    linear = build_warmup(validate(compose_cfg("schedule=linear", "schedule.k=0.5", *keys)), 2.0)
    assert [sqrt(s) for s in range(1, 20)] == pytest.approx([linear(s) for s in range(1, 20)], rel=1e-12)
    assert validate(compose_cfg("schedule=base_silent_test", "schedule.width=5", "device=cpu")).schedule.width == 5


@pytest.mark.parametrize("option", OPTIONS)
def test_every_built_in_method_declares_the_keys_it_reads(option):
    schema = type(validate(compose_cfg("optimizer=adam", f"schedule={option}", "device=cpu")).schedule)
    assert "reads" in vars(schema), f"{schema.__name__} declares no `reads`"


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: build_warmup(Namespace(schedule=Namespace(name="sqrt")), 0.1), "schedule.name=sqrt: no warmup method"),
        (lambda: build_model(Namespace(name="mlp"), (4,), 2), "model.name=mlp: no model of that name (one of cnn, "),
        (lambda: build_optimizer(Namespace(name="lion"), [], 0.1), "optimizer.name=lion: no optimizer of that name"),
        (lambda: INITS.lookup("lion"), "optimizer.name=lion: no optimizer initialization of that name (one of gi_"),
    ],
)
def test_every_registry_refuses_an_unknown_name_in_one_line(build, message):
    """One registry helper (bench/registry.py) behind the warmup methods, initializations, models and optimizers."""
    with pytest.raises(ConfigError) as e:
        build()
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert isinstance(METHODS, Registry) and isinstance(INITS, Registry)
