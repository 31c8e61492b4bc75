"""schedule.warmup_fraction: T_wrm as a fraction of the step budget, resolved once (bench.config.Config) for every
method that reads warmup_steps, refused in one line with a warmup_steps of its own or outside [0, 1]."""

import json

import pytest
import yaml

import bench
from bench.config import validate
from bench.errors import ConfigError
from bench.optim.warmup import build_warmup
from tests.conftest import compose_cfg


def t_wrm(*overrides: str) -> int:
    return validate(compose_cfg(*overrides, "device=cpu")).schedule.warmup_steps


@pytest.mark.parametrize(
    "fraction,steps,expected",
    [(0.05, 512, 26), (0.01, 512, 5), (0.1, 512, 51), (0.25, 512, 128), (1, 512, 512), (0, 512, 1), (0.5, 3, 2)],
)
def test_t_wrm_is_the_nearest_step_halves_up_at_least_one(fraction, steps, expected):
    assert t_wrm(f"schedule.warmup_fraction={fraction}", f"steps={steps}") == expected


def test_linear_warmup_over_five_percent_of_512_steps_by_hand():
    cfg = validate(compose_cfg("schedule.warmup_fraction=0.05", "steps=512", "device=cpu"))
    lr = build_warmup(cfg, 0.52)  # T_wrm = 26: eta(s) = 0.52 s / 26 = 0.02 s
    assert [lr(s) for s in (1, 13, 25, 26, 27, 512)] == pytest.approx([0.02, 0.26, 0.5, 0.52, 0.52, 0.52], rel=1e-12)


@pytest.mark.parametrize("schedule", ["cosine", "cosine_warmup", "catapult", "persistent_catapult"])
def test_every_method_that_reads_warmup_steps_takes_the_fraction(schedule):
    assert t_wrm(f"schedule={schedule}", "schedule.warmup_fraction=0.1", "steps=300") == 30


@pytest.mark.parametrize(
    "args,line",
    [
        (
            ["schedule.warmup_fraction=0.05", "schedule.warmup_steps=64"],
            "schedule.warmup_fraction=0.05: set together with schedule.warmup_steps=64: give one of them",
        ),
        (["schedule.warmup_fraction=1.5"], "schedule.warmup_fraction=1.5: must be in [0, 1] (a fraction of steps)"),
        (["schedule.warmup_fraction=-0.1"], "schedule.warmup_fraction=-0.1: must be in [0, 1] (a fraction of steps)"),
        (
            ["optimizer=adam", "schedule=untuned", "schedule.warmup_fraction=0.05"],
            "schedule.warmup_fraction=0.05: is not used by schedule=untuned (leave it None)",
        ),
    ],
)
def test_bad_fractions_are_one_line(args, line):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(*args, "device=cpu"))  # before any compute
    assert str(e.value) == line


def test_the_run_records_t_wrm_and_its_config_the_fraction(tmp_path, tiny):
    bench.run(compose_cfg(*tiny, "schedule.warmup_fraction=0.25"), tmp_path)  # TINY: 12 steps, T_wrm = 3
    result = json.loads((tmp_path / "result.json").read_text())
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert result["warmup_steps"] == 3 and result["status"] == "completed"
    assert config["schedule"]["warmup_fraction"] == 0.25 and config["schedule"]["warmup_steps"] == 1
