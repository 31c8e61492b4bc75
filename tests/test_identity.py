"""Run identity: a folder is resumed or skipped only by the config that wrote it; anything else is refused in one
line before any compute, with no file changed; force=true replaces the run."""

import json

import pytest
from omegaconf import OmegaConf

import bench
from bench.runfolder import NON_RESULT_KEYS, run_identity
from bench.runfolder.check import IdentityMismatch, check_run_folder, mismatch
from bench.train import Trainer
from tests.conftest import CONF, compose_cfg, launch
from tests.helpers import TINY


def snapshot(folder) -> dict:
    """Every file under folder: its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def test_non_result_keys_are_hydra_exclude_keys():
    """One list: the keys left out of the identity are the keys left out of a sweep folder's name."""
    hydra_keys = OmegaConf.load(CONF / "config.yaml").hydra.job.config.override_dirname.exclude_keys
    assert list(hydra_keys) == list(NON_RESULT_KEYS)


def test_identity_is_the_result_keys():
    base = run_identity(compose_cfg(*TINY))
    same = compose_cfg(*TINY, "threads=2", "force=true", "checkpoint_every=3", "eval_batch_size=7", "logger=wandb")
    assert run_identity(same) == base
    assert run_identity(compose_cfg(*TINY, "optimizer.lr=0.1")) == run_identity(compose_cfg(*TINY, "optimizer.lr=0.10"))
    for changed in ("optimizer.lr=0.05", "seed=7", "steps=13", "optimizer=adam", "dataset.flip=true"):
        assert run_identity(compose_cfg(*TINY, changed)) != base, changed


def test_result_and_folder_carry_the_identity(tmp_path):
    cfg = compose_cfg(*TINY)
    result = bench.run(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert result["run_identity"] == on_disk["run_identity"] == run_identity(cfg)
    assert run_identity(OmegaConf.load(tmp_path / "config.yaml")) == run_identity(cfg), "config.yaml identifies it"
    check_run_folder(tmp_path, cfg)  # the same config: no complaint


def test_other_config_in_used_folder_is_refused_before_compute(tmp_path, monkeypatch):
    """The issue's case: a folder holding a checkpoint of lr 0.1 is not resumed by lr 0.05 seed 7; nothing is built,
    nothing written; force=true replaces the run."""
    from tests.test_checkpoint import Killed, count_steps

    first = compose_cfg(*TINY, "checkpoint_every=4")
    count_steps(monkeypatch, kill_at=7)
    with pytest.raises(Killed):
        bench.run(first, tmp_path)
    before = snapshot(tmp_path)
    assert "checkpoint.pt" in before

    def never(*args, **kwargs):
        raise AssertionError("nothing may be built")

    monkeypatch.setattr(Trainer, "__init__", never)
    other = compose_cfg(*TINY, "optimizer.lr=0.05", "seed=7")
    with pytest.raises(IdentityMismatch) as info:
        bench.run(other, tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path) in msg
    assert "optimizer.lr: 0.1 -> 0.05" in msg and "seed: 0 -> 7" in msg and "force=true" in msg
    assert snapshot(tmp_path) == before, "no file changed"

    monkeypatch.undo()
    replaced = bench.run(compose_cfg(*TINY, "optimizer.lr=0.05", "seed=7", "force=true"), tmp_path)
    assert replaced["status"] == "completed" and replaced["stop_step"] == 12
    assert replaced["run_identity"] == run_identity(other)
    assert OmegaConf.load(tmp_path / "config.yaml").optimizer.lr == 0.05
    assert not (tmp_path / "checkpoint.pt").exists()


def test_many_differences_are_counted(tmp_path):
    bench.run(compose_cfg(*TINY), tmp_path)
    other = compose_cfg(*TINY, "seed=1", "steps=13", "eval_every=3", "batch_size=32", "model.width=16", "loss=xent")
    why = mismatch(tmp_path, other)
    assert "batch_size: 64 -> 32, eval_every: 4 -> 3, loss: mse -> xent, model.width: 32 -> 16 and 2 more" in why


def test_single_run_refused_on_the_command_line(tmp_path):
    """The command line's refusal (one line, non-zero exit, no file changed) of a folder written by the launch; the
    same config is accepted there (skipped: finished). The launches around the refused one run in this process."""
    from tests.conftest import run_in_process

    run_dir = tmp_path / "run"
    run_in_process(*TINY, f"hydra.run.dir={run_dir}")
    assert json.loads((run_dir / "result.json").read_text())["status"] == "completed"
    before = snapshot(run_dir)
    other = [o for o in TINY if not o.startswith("steps=")]
    proc = launch(*other, "optimizer.lr=0.05", "seed=7", "steps=16", f"hydra.run.dir={run_dir}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {run_dir} holds a run of another config (optimizer.lr: 0.1 -> 0.05, seed:")
    assert "steps: 12 -> 16" in lines[0] and "force=true" in lines[0]
    assert snapshot(run_dir) == before
    run_in_process(*TINY, f"hydra.run.dir={run_dir}")  # the same config: skipped, finished (a refusal would raise)
    assert json.loads((run_dir / "result.json").read_text())["status"] == "completed"


def test_edited_sweep_preset_is_refused_before_any_point_runs(tmp_path):
    """A preset edited (steps 12 -> 16) and relaunched into the same sweep folder names the same point folders:
    refused on the command line before anything runs, no file changed; a new sweep folder runs it. The launches
    around the refused one run in this process (--config-dir there: the same folder on Hydra's search path)."""
    from tests.conftest import multirun

    conf = tmp_path / "conf"
    (conf / "sweep").mkdir(parents=True)
    preset = conf / "sweep" / "mini.yaml"
    grid = "hydra:\n  sweeper:\n    params:\n      optimizer.lr: 0.1,0.2\n"
    common = "model:\n  width: 32\n  depth: 2\nbatch_size: 64\neval_every: 4\ndevice: cpu\n"
    preset.write_text(f"# @package _global_\n{grid}{common}steps: 12\n")
    sweep = tmp_path / "sweep"
    searchpath = f"hydra.searchpath=[file://{conf}]"
    assert len(multirun(searchpath, "sweep=mini", f"hydra.sweep.dir={sweep}")) == 2
    assert len(list(sweep.glob("*/result.json"))) == 2
    before = snapshot(sweep)

    preset.write_text(f"# @package _global_\n{grid}{common}steps: 16\n")
    proc = launch("-m", "--config-dir", str(conf), "sweep=mini", f"hydra.sweep.dir={sweep}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "holds a run of another config (steps: 12 -> 16)" in lines[0] and "hydra.sweep.dir" in lines[0]
    assert snapshot(sweep) == before, "no point ran, no file changed"

    new = tmp_path / "new"
    multirun(searchpath, "sweep=mini", f"hydra.sweep.dir={new}")  # a refused point would raise
    results = [json.loads(p.read_text()) for p in new.glob("*/result.json")]
    assert [(r["status"], r["stop_step"]) for r in results] == [("completed", 16)] * 2, "a new folder runs it"


def test_folder_without_a_run_is_free(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("steps: 3\n")  # Hydra's own files are not a run
    assert mismatch(tmp_path, compose_cfg(*TINY)) is None


def test_launcher_skips_only_finished_points_of_the_same_identity(tmp_path, monkeypatch):
    """The launchers' skip (no job for a finished point) requires the folder's identity to match."""
    from hydra import compose, initialize_config_dir

    from bench.runfolder import point_folder
    from bench.sweeps.launcher import LocalJobs

    def point(*overrides):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("config", [*TINY, *overrides, f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)

    launcher = object.__new__(LocalJobs)
    first = point("optimizer.lr=0.5")
    folder = point_folder(first, multirun=True)
    result = bench.run(compose_cfg(*TINY, "optimizer.lr=0.5"), folder)
    monkeypatch.setattr(LocalJobs, "sweep_config", lambda self, overrides: first)
    assert result["status"] == "completed"
    assert launcher.finished(["optimizer.lr=0.5"]).return_value == result["best_test_acc"], "its objective"

    edited = point("optimizer.lr=0.5", "seed=3")  # e.g. a preset edited: same folder, another config
    monkeypatch.setattr(LocalJobs, "sweep_config", lambda self, overrides: edited)
    monkeypatch.setattr("bench.sweeps.launcher.point_folder", lambda cfg, multirun=None: folder)
    assert launcher.finished(["optimizer.lr=0.5"]) is None, "not skipped: the job refuses it in one line"
