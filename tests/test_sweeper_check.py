"""The validating sweeper's check of a grid (bench/sweeps/sweeper.py): as strict as composing every point with Hydra's
load_sweep_config (the same configs, run folders and errors), for one composition per combination of config-group
choices; it says how many points it checks. Its speed is measured in `make bench` (benchmarks/grid_check.py)."""

import logging

import pytest
from omegaconf import OmegaConf

from bench.errors import ConfigError
from bench.sweeps.preflight import check_point, compose_error, composed_command, run_dir, task_config
from bench.sweeps.sweeper import point_name

GOOD = [
    ["optimizer=sgd,adam", "optimizer.lr=0.1,0.2", "schedule.warmup_steps=1,8", "steps=16"],
    ["model=fcn,cnn", "model.width=8,16", "schedule=linear,cosine"],
    ["dataset.num_examples=1000,2000", "hydra.job.config.override_dirname.kv_sep=:", "+dataset.extra=1,2"],
]
BAD = [
    ["optimizer.lr=0.1,-2"],
    ["schedule.warmup_steps=1,x"],
    ["model=fcn,nope"],
    ["nokey=1,2"],
    ["steps=100", "schedule.warmup_steps=1,101"],
    ["optimizer=sgd,adam", "optimizer.b2=0.9,1.5"],
    ["seed=0,1", "~logger"],
]


def hydra_check(sweeper, grid) -> list:
    """The reference: every point composed by Hydra (load_sweep_config, as the launcher composes it), then checked;
    each point's (task config, run folder), or the first error as the sweeper words it."""
    loader, out = sweeper.hydra_context.config_loader, []
    for i, point in enumerate(grid):
        try:
            try:
                cfg = loader.load_sweep_config(sweeper.config, list(point))
            except Exception as e:
                raise compose_error(e) from e
            check_point(cfg)
            out.append((OmegaConf.to_yaml(task_config(cfg)), run_dir(cfg)))
        except ConfigError as e:
            return [*out, f"point {i + 1} of {len(grid)} ({point_name(point, grid)}): {e}"]
    return out


def fast_check(sweeper, grid) -> list:
    """The sweeper's check, with the same record of each point."""
    out = []
    real = sweeper.run_dirs

    def compose_spy(compose):
        def spy(point):
            cfg, task = compose(point)
            out.append((OmegaConf.to_yaml(task), run_dir(cfg)))
            return cfg, task

        return spy

    import bench.sweeps.sweeper as module

    composer = module.Composer
    try:
        module.Composer = lambda *a: compose_spy(composer(*a))
        sweeper.check(grid)
    except ConfigError as e:  # in place of what the failing point recorded, if it got so far
        del out[sweeper.checking[0] - 1 :]
        out.append(str(e))
    finally:
        module.Composer = composer
        sweeper.run_dirs = real
    return out


@pytest.mark.parametrize("args", GOOD + BAD, ids=lambda a: " ".join(a)[:40])
def test_the_check_finds_what_composing_every_point_finds(tmp_path, args):
    with composed_command(["-m", *args, f"hydra.sweep.dir={tmp_path}"]) as (cfg, sweeper):
        grid = sweeper.grid(OmegaConf.to_container(cfg.hydra.overrides.task))
        expected = hydra_check(sweeper, grid)
        assert fast_check(sweeper, grid) == expected
    assert (args in BAD) == isinstance(expected[-1], str), expected[-1]


def test_a_grid_is_composed_once_per_group_choice_and_counted(tmp_path, caplog, capsys, monkeypatch):
    """400 points over two optimizers: two compositions (the launcher composes each point again, when it runs); the
    check says how many points it checks, and on a terminal shows its progress."""
    import bench.progress

    monkeypatch.setattr(bench.progress, "interactive", lambda: True)  # stderr a terminal
    with composed_command(["-m", "seed=range(0,200)", "optimizer=sgd,adam", f"hydra.sweep.dir={tmp_path}"]) as (
        cfg,
        sweeper,
    ):
        loader = sweeper.hydra_context.config_loader
        calls = []
        compose = loader.load_sweep_config

        def spy(master, overrides):
            calls.append(overrides)
            return compose(master, overrides)

        loader.load_sweep_config = spy
        try:
            with caplog.at_level(logging.INFO, logger="bench.sweeps.sweeper"):
                grid = sweeper.checked_grid(OmegaConf.to_container(cfg.hydra.overrides.task))
        finally:
            del loader.load_sweep_config
    assert len(grid) == 400 and sorted(calls) == [["optimizer=adam"], ["optimizer=sgd"]]
    assert len(set(sweeper.run_dirs.values())) == 400
    assert "checking the 400 points of the sweep" in caplog.text
    assert "/400 [" in capsys.readouterr().err, "a progress bar over the 400 points"


def test_a_grid_over_the_limit_is_refused_up_front_with_its_size():
    """seed=range(0,200000) x 2: refused before anything is expanded or composed (the grid is never built)."""
    from bench.sweeps.preflight import check_command
    from bench.sweeps.sweeper import MAX_POINTS

    with pytest.raises(ConfigError, match=f"^the grid has 400000 points, over the {MAX_POINTS} one sweep checks"):
        check_command(["-m", "seed=range(0,200000)", "optimizer.lr=0.1,0.2"])
