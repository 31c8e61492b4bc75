"""Identity (issue 24): a finished result proves its own config (an edited config.yaml next to it is refused and
excluded from analysis); a single run refuses a sweep's folder; device=auto and the device it resolved to are one
run; folder names come from what the overrides mean, not how they are written."""

from __future__ import annotations

import json
import shutil

import pytest

from analysis.__main__ import main as analysis
from analysis.status import report
from bench.errors import ConfigError
from bench.runfolder import unproven_result
from bench.runfolder.check import mismatch
from tests.conftest import compose_cfg, multirun, run_in_process


def _edit_lr(folder, old: str, new: str) -> None:
    path = folder / "config.yaml"
    text = path.read_text()
    assert f"lr: {old}\n" in text
    path.write_text(text.replace(f"lr: {old}\n", f"lr: {new}\n"))


def test_an_edited_config_next_to_a_finished_result_is_refused_and_excluded(tmp_path, tiny, capsys):
    sweep = tmp_path / "sweep"
    multirun(*tiny, "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={sweep}")
    (first,) = sweep.glob("*lr=0.1,*")
    assert unproven_result(first) is None
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    _edit_lr(copy, "0.1", "0.3")  # the copy: its result.json is still the lr=0.1 run
    assert "not of its config.yaml" in unproven_result(copy)

    with pytest.raises(SystemExit) as single:  # a single run: one line, nothing skipped as "already completed"
        run_in_process(*tiny, "optimizer.lr=0.3", f"hydra.run.dir={copy}")
    assert "its result.json is of run" in str(single.value.code) and "\n" not in str(single.value.code)
    assert mismatch(copy, compose_cfg(*tiny, "optimizer.lr=0.3")) is not None, "the launchers' skip refuses it too"

    _edit_lr(first, "0.1", "0.3")  # now inside the sweep
    with pytest.raises(ConfigError, match=r"point 1 of 2 .*its result.json is of run"):
        multirun(*tiny, "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={sweep}")

    status = report(sweep)
    assert "1 completed, 0 diverged, 1 failed" in status and f"{first.name}: excluded: its result.json" in status
    capsys.readouterr()
    analysis(["phase", str(sweep), "--verbose"])
    out, err = capsys.readouterr()
    assert "warning: skipped 1 unreadable item(s):" in err and f"{first}: excluded: its result.json" in err
    assert out.startswith("1 runs: completed 1")  # the edited folder is never used


def test_a_single_run_refuses_a_sweeps_folder(tmp_path, tiny):
    sweep = tmp_path / "sweep"
    multirun(*tiny, "seed=0,1", f"hydra.sweep.dir={sweep}")
    before = sorted(p.name for p in sweep.iterdir())
    with pytest.raises(SystemExit) as stop:
        run_in_process(*tiny, f"hydra.run.dir={sweep}")
    assert f"{sweep} is a sweep's folder (it holds multirun.yaml)" in str(stop.value.code)
    (sweep / "multirun.yaml").unlink()
    with pytest.raises(SystemExit, match=r"is a sweep's folder \(its subfolder .* holds a run\)"):
        run_in_process(*tiny, f"hydra.run.dir={sweep}", "force=true")
    assert sorted(p.name for p in sweep.iterdir()) == sorted(set(before) - {"multirun.yaml"}), "nothing written"


def test_device_auto_and_the_device_it_ran_on_are_one_run(tmp_path, tiny):
    run = tmp_path / "run"
    plain = [a for a in tiny if not a.startswith("device=")]
    first = run_in_process(*plain, "device=auto", f"hydra.run.dir={run}").return_value
    assert json.loads((run / "result.json").read_text())["device"] == "cpu"
    config = (run / "config.yaml").read_text()
    again = run_in_process(*plain, "device=cpu", f"hydra.run.dir={run}").return_value  # skipped: the same run
    assert again == first and again.status == "completed"
    assert (run / "config.yaml").read_text() == config, "the folder's run, unchanged"
    assert mismatch(run, compose_cfg(*plain, "device=cuda")) is not None, "another device is another run"


def test_stating_a_default_uses_the_same_folder_and_old_folders_are_kept(tmp_path, tiny):
    """optimizer=sgd is the default: `optimizer=sgd optimizer.lr=...` and `optimizer.lr=...` are one folder (the
    second launch trains nothing); a sweep folder written before, whose folders name the stated default, is resumed
    in its own folders."""
    from bench.runfolder import NON_RESULT_KEYS, run_id

    sweep = tmp_path / "sweep"
    first = multirun(*tiny, "optimizer=sgd", "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={sweep}")
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(folders) == 2 and not any("optimizer=" in f for f in folders)
    again = multirun(*tiny, "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={sweep}")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == folders
    assert [r.return_value for r in again] == [r.return_value for r in first]

    point = [*tiny, "optimizer=sgd", "optimizer.lr=0.1"]  # an old sweep: its folder named optimizer=sgd
    old = run_id(point, NON_RESULT_KEYS)
    assert "optimizer=sgd" in old
    (new,) = [f for f in folders if "lr=0.1," in f]
    (sweep / new).rename(sweep / old)
    third = multirun(*tiny, "optimizer=sgd", "optimizer.lr=0.1", f"hydra.sweep.dir={sweep}")
    assert not (sweep / new).exists(), "the old folder is used, nothing trained again"
    assert third[0].return_value == first[0].return_value


def test_eval_batch_size_changes_no_recorded_byte(tmp_path, tiny):
    """eval_batch_size is listed as not changing results: metrics.csv is byte-identical whatever it is."""
    from bench.train import run

    for size in (7, 1000):
        run(compose_cfg(*tiny, f"eval_batch_size={size}"), tmp_path / str(size))
    assert (tmp_path / "7" / "metrics.csv").read_bytes() == (tmp_path / "1000" / "metrics.csv").read_bytes()


@pytest.mark.parametrize("lm", [False, True])
def test_per_example_losses_average_to_the_loss(lm):
    import torch

    from bench.losses import LOSSES, PER_EXAMPLE

    g = torch.Generator().manual_seed(0)
    out = torch.randn(6, 5, 11, generator=g) if lm else torch.randn(6, 11, generator=g)
    targets = torch.randint(0, 11, (6, 5), generator=g) if lm else torch.softmax(torch.randn(6, 11, generator=g), -1)
    for name, loss in LOSSES.items():
        each = PER_EXAMPLE[name](out, targets)
        assert each.shape == (6,) and torch.allclose(each.mean(), loss(out, targets), atol=1e-6)
