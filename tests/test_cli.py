"""Bad input gets one clear line naming the key, a non-zero exit, and no run folder."""

import pytest

from bench.cli import preflight
from bench.config import ConfigError
from tests.conftest import launch


@pytest.mark.parametrize(
    "arg,key",
    [
        ("optimizer.lr=-1", "optimizer.lr"),
        ("model=nope", "model=nope"),
        ("steps=abc", "steps"),
        ("schedule.warmup_steps=-5", "schedule.warmup_steps"),
    ],
)
def test_bad_input_is_one_line_before_training(tmp_path, arg, key):
    proc = launch(arg, f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and key in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv,key",
    [
        (["-m", "optimizer.lr=0.1,-2"], "optimizer.lr=-2"),
        (["-m", "model=fcn,nope"], "model=nope"),
        (["-m", "schedule.warmup_steps=1,x"], "schedule.warmup_steps=x"),
        (["nokey=1"], "nokey"),
        (["loss=hinge"], "loss=hinge"),
        (["-m", "+sweep=demo", "steps=0"], "steps=0"),
    ],
)
def test_preflight_checks_every_grid_point(argv, key):
    with pytest.raises(ConfigError, match=key.replace("+", r"\+")):
        preflight(argv)


def test_preflight_accepts_good_sweeps():
    preflight(["-m", "+sweep=demo"])
    preflight(["-m", "optimizer.lr=0.1,0.2", "schedule.warmup_steps=1,64", "seed=0,1"])
    preflight(["steps=20"])
