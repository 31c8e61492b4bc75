"""Warmup methods are found by name through one registry; the step loops name no method."""

from pathlib import Path

import pytest

import bench
from bench.config import validate
from bench.optim.warmup import METHODS, WarmupMethod, build_warmup
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
