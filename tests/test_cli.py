"""Bad input gets one clear line naming the key, a non-zero exit, and no run folder: a single run is checked by the
Preflight callback, every point of a sweep by the validating sweeper, before anything trains
(bench.sweeps.preflight)."""

import json

import pytest

from bench.errors import ConfigError
from bench.sweeps.preflight import check_command as preflight
from tests.conftest import launch, multirun


# The command line, once per way a single run's bad input reaches it: Hydra's composition refuses it (no such config,
# a value of the wrong type: bench.sweeps.preflight.compose_error), or the Preflight callback does (a bad value). The
# other
# bad inputs take the same ways (a key given twice is one more of the Preflight callback's checks, on the overrides
# Hydra hands it): they are checked in-process below (bench.sweeps.preflight.check_command, as the launch checks
# them), which
# costs no interpreter start.
@pytest.mark.parametrize("args,key", [("optimizer.lr=-1", "optimizer.lr"), ("model=nope", "model=nope")])
def test_bad_input_is_one_line_before_training(tmp_path, args, key):
    proc = launch(*args.split(), f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and key in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv,key",
    [
        (["steps=abc"], "steps"),
        (["schedule.warmup_steps=-5"], "schedule.warmup_steps"),
        (["optimizer.lr=inf"], "optimizer.lr=inf"),
    ],
)
def test_bad_input_of_a_single_run_is_one_line(argv, key):
    with pytest.raises(ConfigError) as info:
        preflight(argv)
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "argv,key",
    [
        (["-m", "optimizer.lr=0.1,-2"], "optimizer.lr=-2"),
        (["-m", "model=fcn,nope"], "model=nope"),
        (["-m", "schedule.warmup_steps=1,x"], "schedule.warmup_steps=x"),
        (["nokey=1"], "nokey"),
        (["loss=hinge"], "loss=hinge"),
        (["-m", "sweep=demo", "steps=0"], "steps=0"),
    ],
)
def test_preflight_checks_every_grid_point(argv, key):
    with pytest.raises(ConfigError, match=key.replace("+", r"\+")):
        preflight(argv)


def test_preflight_accepts_good_sweeps():
    """Good input passes, and every point of the grid is checked (the count of points checked is the grid's size)."""
    assert preflight(["-m", "sweep=demo"]) == 9 * 4  # conf/sweep/demo.yaml: 9 eta_trgt x 4 T_wrm
    assert preflight(["-m", "optimizer.lr=0.1,0.2", "schedule.warmup_steps=1,64", "seed=0,1"]) == 2 * 2 * 2
    assert preflight(["steps=20"]) == 1


@pytest.mark.parametrize(
    "argv,message",
    [
        (["optimizer.lr=inf"], "optimizer.lr=inf: must be a finite number"),
        (["optimizer.lr=-inf"], "optimizer.lr=-inf: must be a finite number"),
        (["optimizer.lr=nan"], "optimizer.lr=nan: must be a finite number"),
        (["schedule.lr_init=inf"], "schedule.lr_init=inf: must be a finite number"),
        (["optimizer=adam", "optimizer.eps=inf"], "optimizer.eps=inf: must be a finite number"),
        (["schedule.k=inf"], "schedule.k=inf: must be a finite number"),
        (["schedule.p=inf"], "schedule.p=inf: must be a finite number"),
        (["-m", "schedule.p=0,inf"], "schedule.p=inf: must be a finite number"),
        (["steps=100", "schedule.warmup_steps=101"], "schedule.warmup_steps=101: is more than steps=100"),
        (["-m", "sweep=demo", "steps=200"], "schedule.warmup_steps=256: is more than steps=200"),
        (["batch_size=4001"], "batch_size=4001: larger than the 4000 training examples of dataset=mnist5k"),
        (["dataset.num_examples=100", "batch_size=128"], "larger than the 100 training examples"),
        (["dataset.num_test=4500", "batch_size=501"], "larger than the 500 training examples"),
        (["optimizer.lr=0.1", "seed=1", "optimizer.lr=0.2"], "optimizer.lr is given twice"),
        (["-m", "optimizer.lr=0.1,0.2", "optimizer.lr=0.3"], "optimizer.lr is given twice"),
        (["optimizer=adam", "optimizer=sgd"], "optimizer is given twice"),
    ],
)
def test_values_that_cannot_be_meant_are_one_line(argv, message):
    with pytest.raises(ConfigError) as info:
        preflight(argv)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_full_batch_and_the_whole_set_are_fine():
    """The edges of the batch-size rule pass: 0 (full batch) and exactly the training set (4001 is refused above)."""
    from bench.config import known_train_size
    from tests.conftest import compose_cfg

    assert known_train_size(compose_cfg().dataset) == 4000  # mnist5k less its 1000 test images: the largest batch
    assert preflight(["batch_size=0"]) == 1
    assert preflight(["batch_size=4000", "steps=10", "schedule.warmup_steps=10"]) == 1
    assert preflight(["logger=wandb"]) == 1  # offline by default: no credentials needed


def test_batch_size_of_a_dataset_known_only_once_loaded(tmp_path, monkeypatch):
    """Datasets whose size the config does not fix are checked right after loading, before any step."""
    import bench
    from bench import config
    from bench.train import Trainer
    from tests.conftest import compose_cfg

    monkeypatch.setattr(config, "known_train_size", lambda dataset: None)
    monkeypatch.setattr(Trainer, "train_step", lambda self, s: pytest.fail("no step may run"))
    with pytest.raises(ConfigError, match="batch_size=4001: larger than the 4000 training examples"):
        bench.run(compose_cfg("batch_size=4001", "device=cpu"), tmp_path)


def test_wandb_online_without_credentials_fails_once_before_launching(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no such file: no stored login
    with pytest.raises(ConfigError, match="logger.mode=online: no wandb credentials for api.wandb.ai"):
        preflight(["-m", "logger=wandb", "logger.mode=online", "optimizer.lr=0.1,0.2"])


def test_wandb_online_without_network_fails_once_before_launching(monkeypatch):
    import socket

    def unreachable(address, timeout=None):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(
        ConfigError, match="cannot reach api.wandb.ai:443 \\(Network is unreachable\\); use logger.mode"
    ):
        preflight(["logger=wandb", "logger.mode=online"])


def test_read_only_output_folder_is_refused_before_launching(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as root, only a read-only filesystem says so
    with pytest.raises(ConfigError, match="the output folder is read-only or not writable"):
        preflight([f"hydra.run.dir={tmp_path}/run"])
    with pytest.raises(ConfigError, match="the output folder is read-only or not writable"):
        preflight(["-m", "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={tmp_path}/sweep"])


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
    multirun("sweep=ranged", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *tiny, f"hydra.sweep.dir={sweep}")
    results = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(list(sweep.glob("*warmup_steps=1,*/result.json"))) == len(list(sweep.glob("*warmup_steps=2,*/r*"))) == 1
    assert [r["status"] for r in results] == ["completed", "completed"]


def test_printing_a_config_needs_no_data(tmp_path):
    """--cfg / --info print without the dataset (the issue's check: the fig3_wrn_sp_xent preset composes with no CIFAR
    on disk), and `+sweep=demo` on the command line (the spelling before presets joined the defaults list) prints the
    job the plain `sweep=demo` composes; running the preset is refused in one line, nothing written."""
    from omegaconf import OmegaConf

    from tests.conftest import compose_cfg

    nodata = f"dataset.root={tmp_path}"
    proc = launch("experiment=fig3_wrn_sp_xent", "+sweep=demo", nodata, "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    plain = compose_cfg("experiment=fig3_wrn_sp_xent", "sweep=demo", nodata)
    assert proc.stdout == OmegaConf.to_yaml(plain)  # what --cfg job prints
    assert (plain.loss, plain.model.name, plain.model.width_factor, plain.name) == ("xent", "wrn", 4, "demo")
    assert launch("experiment=fig3_wrn_sp_xent", nodata, "--info", "config").returncode == 0
    proc = launch("experiment=fig3_wrn_sp_xent", nodata, cwd=tmp_path)  # the default run folder: under tmp_path
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "dataset=cifar10: not found" in lines[0] and "download=true" in lines[0]
    assert not (tmp_path / "outputs").exists(), "nothing ran"


def test_plus_preset_of_older_commands_is_the_plain_preset():
    """`+sweep=demo` / `+experiment=NAME` (the spelling before presets joined the defaults list) are read as the plain
    form before Hydra composes (the command line's output: test_printing_a_config_needs_no_data)."""
    from bench.cli import plain_presets

    argv = ["launch.py", "-m", "+experiment=cpu/fig3_wrn_sp_xent", "+sweep=demo", "+extra=1", "seed=1"]
    assert plain_presets(argv) == [
        "launch.py",
        "-m",
        "experiment=cpu/fig3_wrn_sp_xent",
        "sweep=demo",
        "+extra=1",
        "seed=1",
    ]
    assert preflight(plain_presets(["+experiment=cpu/fig3_wrn_sp_xent", "+sweep=demo"])) == 1


def command_line(argv: list[str], capsys, monkeypatch) -> list[str]:
    """`python launch.py ARGV` in this process (bench.cli.cli, as the console script runs it), which must end with
    exit status 1: what it writes to stderr, in lines, its exit message (the line Python prints) last. Hydra's
    global state and this process's root logger are left as they were."""
    import logging
    import sys

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from bench import cli as app

    monkeypatch.setattr(sys, "argv", ["launch.py", *argv])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # what cli() sets
    root, before = logging.getLogger(), HydraConfig.instance().cfg
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as exit:
            app.cli()
    finally:
        GlobalHydra.instance().clear()
        root.handlers[:], root.level = handlers, level
        HydraConfig.instance().cfg = before
    assert isinstance(exit.value.code, str), f"exit status {exit.value.code}"  # Python prints it, exit status 1
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()] + [exit.value.code]


def _finished_tiny_run(folder, tiny) -> list[str]:
    """A tiny run trained into folder, its result removed (so that it resumes): the overrides that name it."""
    from tests.conftest import run_in_process

    args = [*tiny, f"hydra.run.dir={folder}"]
    run_in_process(*args)
    (folder / "result.json").unlink()
    return args


def _full_disk(monkeypatch, folder: str, name: str) -> None:
    """The kernel refuses to create `name` in a folder ending with `folder` (ENOSPC), as tests/test_storage.py."""
    import errno
    import os
    import tempfile

    from bench import runfolder

    mkstemp = tempfile.mkstemp

    def refusing(*args, dir=None, prefix="", **kwargs):
        if str(dir).endswith(folder) and prefix.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return mkstemp(*args, dir=dir, prefix=prefix, **kwargs)

    monkeypatch.setattr(runfolder.tempfile, "mkstemp", refusing)


def _interrupt_at(monkeypatch, target, name: str, when=lambda *a: True):
    original = getattr(target, name)

    def interrupted(*args, **kwargs):
        if when(*args):
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, interrupted)


def _case(name, tmp_path, monkeypatch, tiny) -> tuple[list[str], str]:
    """(argv, the start of its one line) of each bad input or machine fault."""
    import torch

    import bench
    import bench.sweeps.preflight
    import bench.sweeps.sweeper

    run, sweep = f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"
    (tmp_path / "file").write_text("")
    if name in ("lock dir", "checkpoint dir"):
        (tmp_path / "run" / ("run.lock" if name == "lock dir" else "checkpoint.pt")).mkdir(parents=True)
    if name in ("checkpoint format 1", "checkpoint format 3"):
        args = _finished_tiny_run(tmp_path / "run", tiny)
        path = tmp_path / "run" / "checkpoint.pt"
        if name.endswith("1"):
            torch.save({"a": 1}, path)
        else:
            path.write_bytes(b"warmup-bench-checkpoint 3 0 1\nx")
        return args, f"error: {path}: format {name[-1]}"
    if name == "disk full before the run":
        _full_disk(monkeypatch, ".hydra", "config.yaml")
    if name == "disk full during the run":
        _full_disk(monkeypatch, "run", "metrics.csv")
    if name == "Ctrl-C before the run":
        _interrupt_at(monkeypatch, bench.sweeps.preflight, "check_point")
    if name == "Ctrl-C in the check":
        _interrupt_at(monkeypatch, bench.sweeps.sweeper, "check_point")
    if name == "Ctrl-C in the sweep":
        _interrupt_at(monkeypatch, bench, "run", when=lambda cfg, *a: cfg.optimizer.lr == 0.2)
    return {
        "unknown dataset": (["dataset.name=nope", run], "error: dataset.name=nope: no such dataset (available: mn"),
        "range step 0": (["-m", "optimizer.lr=range(0,1,0)", sweep], "error: optimizer.lr=range(0,1,0): range() arg"),
        "empty grid": (["-m", "seed=range(5,0)", sweep], "error: seed=range(5,0): sweeps no values (an empty grid)"),
        "trailing comma": (["optimizer.lr=0.1,", run], "error: optimizer.lr=0.1,: not a valid override ("),
        "unicode path": ([f"hydra.run.dir={tmp_path}/ü"], f"error: hydra.run.dir={tmp_path}/ü: Hydra reads 'ü' only"),
        "run dir a file": ([f"hydra.run.dir={tmp_path}/file"], f"error: {tmp_path}/file: is a file, not a folder"),
        "its parent a file": ([f"hydra.run.dir={tmp_path}/file/run"], f"error: {tmp_path}/file: is a file, not a f"),
        "sweep dir a file": (
            ["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path}/file"],
            f"error: point 1 of 2 (seed=0): {tmp_path}/file: is a file, not a folder",
        ),
        "lock dir": ([*tiny, run], f"error: {tmp_path}/run/run.lock: is a folder, not the run's file"),
        "checkpoint dir": ([*tiny, run], f"error: {tmp_path}/run/checkpoint.pt: is a folder, not the run's file"),
        "disk full before the run": (
            [*tiny, run],
            f"error: cannot write {tmp_path}/run/.hydra/config.yaml: the disk is full (or the quota is spent) (ENOSPC)",
        ),
        "disk full during the run": ([*tiny, run], f"error: cannot write {tmp_path}/run/metrics.csv: the disk is full"),
        "Ctrl-C before the run": ([*tiny, run], "interrupted (Ctrl-C) before the run started: nothing to resume"),
        "Ctrl-C in the check": (
            ["-m", "seed=0,1", sweep],
            "stopped (Ctrl-C) while checking point 1 of 2: nothing was launched",
        ),
        "Ctrl-C in the sweep": (
            ["-m", *tiny, "optimizer.lr=0.1,0.2", sweep],
            "stopped (Ctrl-C): 2 points: 1 completed, 0 diverged, 0 failed, 0 skipped (running elsewhere), "
            f"1 unfinished; see: python -m analysis status {tmp_path / 'sweep'}; the same command resumes the rest",
        ),
    }[name]


@pytest.mark.parametrize(
    "name",
    [
        "unknown dataset",
        "range step 0",
        "empty grid",
        "trailing comma",
        "unicode path",
        "run dir a file",
        "its parent a file",
        "sweep dir a file",
        "lock dir",
        "checkpoint dir",
        "checkpoint format 1",
        "checkpoint format 3",
        "disk full before the run",
        "disk full during the run",
        "Ctrl-C before the run",
        "Ctrl-C in the check",
        "Ctrl-C in the sweep",
    ],
)
def test_every_bad_input_and_machine_fault_is_one_line(name, tmp_path, monkeypatch, capsys, tiny):
    """Each case of "Trust, round 2" on the command line (in this process): one line on stderr, exit status 1, no
    traceback; an interruption before anything started does not promise a resume."""
    argv, start = _case(name, tmp_path, monkeypatch, tiny)
    lines = command_line(argv, capsys, monkeypatch)
    assert len(lines) == 1 and lines[0].startswith(start), lines
    if name == "disk full before the run":
        assert not (tmp_path / "run" / ".hydra" / "config.yaml").exists(), "no empty config.yaml left"


def test_a_checkpoint_of_another_format_is_one_line_on_the_real_command_line(tmp_path, monkeypatch, tiny):
    """The in-process cases above, checked once through a real interpreter: the run fails in its task function."""
    argv, start = _case("checkpoint format 1", tmp_path, monkeypatch, tiny)
    proc = launch(*argv)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith(start), proc.stderr
