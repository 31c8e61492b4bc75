"""Warmup methods are found by name through one registry (as initializations, models and optimizers are); the
step loops name no method."""

from argparse import Namespace
from pathlib import Path

import pytest

import bench
from bench.config import ConfigError, validate
from bench.models import build_model
from bench.optim import build_optimizer
from bench.optim.initialization import INITS
from bench.optim.warmup import METHODS, WarmupMethod, build_warmup
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
