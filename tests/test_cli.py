"""Bad input gets one clear line naming the key, a non-zero exit, and no run folder: a single run is checked by the
Preflight callback, every point of a sweep by the validating sweeper, before anything trains (bench.preflight)."""

import json

import pytest

from bench.config import ConfigError
from bench.preflight import check_command as preflight
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


def test_sweeper_checks_points_not_values(tmp_path):
    """Each value alone is fine; the point (width 96, heads 64) is not: one line naming it, nothing trained."""
    sweep = tmp_path / "sweep"
    args = ["-m", "model=transformer", "dataset=text", "loss=xent", "model.width=96,128", "model.heads=4,64"]
    proc = launch(*args, f"hydra.sweep.dir={sweep}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: point 2 of 4 (model.width=96 model.heads=64)") and "model.width" in lines[0]
    assert not sweep.exists()


def test_every_override_syntax_expands_as_hydra_does():
    assert preflight(["-m", "optimizer.lr=range(1,4)", "schedule.warmup_steps=choice(1,2)", "seed=0"]) == 6
    assert preflight(["-m", "model=glob([c*,f*])", "model.width=32"]) == 2
    with pytest.raises(Exception, match="does not support sweep type : INTERVAL"):  # Hydra's BasicSweeper's limit
        preflight(["-m", "optimizer.lr=interval(0.1,1)"])


@pytest.mark.slow
def test_preset_with_range_sweep_runs(tmp_path, tiny):
    """hydra.sweeper.params in a preset is parsed by Hydra's override grammar, range() included."""
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "conf" / "sweep" / "ranged.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      schedule.warmup_steps: range(1,3)\n"
    )
    sweep = tmp_path / "sweep"
    proc = launch(
        "-m", "+sweep=ranged", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *tiny, f"hydra.sweep.dir={sweep}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(list(sweep.glob("*warmup_steps=1,*/result.json"))) == len(list(sweep.glob("*warmup_steps=2,*/r*"))) == 1
    assert [r["status"] for r in results] == ["completed", "completed"]


def test_printing_a_config_needs_no_data(tmp_path):
    """--cfg / --info / --help print without the dataset; running the same config is refused in one line."""
    nodata = f"dataset.root={tmp_path}"
    proc = launch("+experiment=fig3_wrn_sp_mse", nodata, "--cfg", "job")
    assert proc.returncode == 0 and "width_factor" in proc.stdout, proc.stderr
    assert launch("+experiment=fig3_wrn_sp_mse", nodata, "--info", "config").returncode == 0
    proc = launch("+experiment=fig3_wrn_sp_mse", nodata, f"hydra.run.dir={tmp_path}/run")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "dataset=cifar10: not found" in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()
