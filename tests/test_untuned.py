"""The untuned warmup of Ma & Yarats (2021), added as one module + one YAML: closed form, registry, a real run."""

import math

import pytest

import bench
from bench.config import validate
from bench.errors import ConfigError
from bench.optim.warmup import METHODS, build_warmup
from tests.conftest import compose_cfg


def method(*overrides, lr=0.01):
    cfg = validate(compose_cfg("optimizer=adam", "schedule=untuned", "device=cpu", *overrides))
    return build_warmup(cfg, lr)


@pytest.mark.parametrize("b2", [0.999, 0.99, 0.9])
def test_exponential_closed_form(b2):
    m = method(f"optimizer.b2={b2}")
    for s in (1, 2, 10, 100, 1000, 10000):
        assert m(s) == pytest.approx(0.01 * (1 - math.exp(-(1 - b2) * s)), rel=1e-12)
    assert m(1) == pytest.approx(0.01 * (1 - b2), rel=1 - b2)  # starts near (1 - b2) eta_trgt, not at 0


@pytest.mark.parametrize("b2", [0.999, 0.99])
def test_linear_form_over_two_over_one_minus_b2(b2):
    m = method("schedule.form=linear", f"optimizer.b2={b2}")
    t = 2 / (1 - b2)  # 2000 steps at b2 = 0.999, 200 at 0.99
    assert m(1) == pytest.approx(0.01 / t)
    assert m(round(t / 2)) == pytest.approx(0.005)
    assert m(round(t)) == pytest.approx(0.01)
    assert m(round(t) + 1) == m(10 * round(t)) == 0.01  # then constant eta_trgt


def test_registered_by_its_module_and_found_by_name():
    assert METHODS["untuned"].__module__ == "bench.optim.untuned"
    assert method().state_dict() == {}  # closed form: nothing to checkpoint


@pytest.mark.parametrize(
    "args,key",
    [
        (("optimizer=sgd", "schedule=untuned"), "optimizer"),  # needs b2
        (("optimizer=adam", "schedule=untuned", "schedule.form=cubic"), "schedule.form"),
        (("optimizer=adam", "schedule=untuned", "schedule.warmup_steps=100"), "schedule.warmup_steps"),
    ],
)
def test_bad_input_is_one_line(args, key):
    with pytest.raises(ConfigError, match=key):
        validate(compose_cfg(*args, "device=cpu"))  # refused by validate: before any compute


def test_a_run_follows_the_closed_form(tmp_path, tiny):
    b2 = 0.9
    bench.run(
        compose_cfg(*tiny, "optimizer=adam", "optimizer.lr=0.001", f"optimizer.b2={b2}", "schedule=untuned"), tmp_path
    )
    import pandas as pd

    rows = pd.read_csv(tmp_path / "metrics.csv").dropna(subset=["test_acc"])
    expected = [0.001 * (1 - math.exp(-(1 - b2) * s)) for s in rows["step"]]
    assert rows["lr"].tolist() == pytest.approx(expected, rel=1e-9)
    assert (tmp_path / "result.json").exists()
