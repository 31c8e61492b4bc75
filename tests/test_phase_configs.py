"""Analysis never mixes configs, skips wrong-typed results with a counted warning, reports odd folders in one line,
writes elsewhere when the sweep folder is read-only, and draws sparse grids honestly. Sweep folders are written here
by hand (config.yaml + metrics.csv + result.json, in the harness's format); one slow test trains a real sweep."""

from __future__ import annotations

import builtins
import errno
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import eta_max, load_runs, phase_grid, plot_phase
from analysis.__main__ import main as analysis_main
from analysis.aggregate import SkippedItems
from analysis.phase import MAX_PANELS, mixed_keys
from analysis.status import axis_values

OPTIMIZERS = {  # as conf/optimizer/*.yaml resolve: keys that follow from the optimizer's name
    "sgd": {"name": "sgd", "lr_unit": "absolute", "momentum": 0.0, "nesterov": False},
    "adam": {"name": "adam", "lr_unit": "absolute", "b1": 0.9, "b2": 0.999, "eps": 1e-8},
}


def write_run(folder: Path, optimizer="sgd", lr=0.5, warmup=1, seed=0, acc=0.9, status="completed", **config):
    """A run folder in the harness's format; acc=None: no evaluation (diverged)."""
    folder.mkdir(parents=True)
    cfg = {
        "model": {"name": "fcn", "width": 32},
        "optimizer": {**OPTIMIZERS[optimizer], "lr": lr},
        "schedule": {"name": "linear", "warmup_steps": warmup},
        "seed": seed,
        "steps": 12,
        "threads": seed + 1,  # keys that do not change results may differ between runs
        "checkpoint_every": 100 * (seed + 1),
        "logger": {"name": "none" if seed else "wandb"},
        **config,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "metrics.csv").write_text(f"step,lr,test_acc\n12,{lr},{acc if acc is not None else ''}\n")
    result = {
        "format": 1,
        "status": status,
        "stop_step": 12,
        "best_test_acc": acc,
        "final_test_acc": acc if status == "completed" else None,
        "num_classes": 10,
        "lr": lr * 3.7
        if isinstance(lr, float)
        else None,  # the absolute eta_trgt: differs from optimizer.lr for lr_unit=inverse_sharpness
        "lambda0": 0.3 + seed,  # differs between seeds
        "seed": seed,
        "wall_time_s": 1.0 + seed,
        "git_sha": f"abc{seed}",
        "hostname": f"node{seed}",
        "device": f"cuda:{seed}",
    }
    (folder / "result.json").write_text(json.dumps(result))


def trained_up_to(optimizer: str, warmup: int) -> float:
    """The synthetic boundary: SGD trains up to 0.5 at T_wrm 1 and 1 at T_wrm 8; Adam only up to 0.25."""
    return {"sgd": {1: 0.5, 8: 1.0}, "adam": {1: 0.25, 8: 0.25}}[optimizer][warmup]


@pytest.fixture
def mixed_sweep(tmp_path):
    """optimizer=sgd,adam x eta_trgt {0.25, 0.5, 1, 2} x T_wrm {1, 8} x seed {0, 1}."""
    root = tmp_path / "sweep"
    for opt in OPTIMIZERS:
        for lr in (0.25, 0.5, 1.0, 2.0):
            for w in (1, 8):
                for s in (0, 1):
                    ok = lr <= trained_up_to(opt, w)
                    acc = (0.8 if opt == "sgd" else 0.6) + 0.01 * s
                    name = f"optimizer={opt},lr={lr},warmup={w},seed={s}"
                    write_run(root / name, opt, lr, w, s, acc if ok else None, "completed" if ok else "diverged")
    return root


def test_mixed_optimizer_sweep_yields_one_eta_max_per_optimizer(mixed_sweep):
    runs = load_runs(mixed_sweep)
    assert len(runs) == 32
    # momentum, b1, ... follow from the name; lr (absolute), lambda0, threads, logger, device, ... are not configs
    assert mixed_keys(runs) == ["optimizer.name"]
    bound = eta_max(runs)
    assert list(bound.columns) == ["optimizer.name", "schedule.warmup_steps", "eta_max", "lower_bound"]
    got = {(r["optimizer.name"], r["schedule.warmup_steps"]): r["eta_max"] for _, r in bound.iterrows()}
    assert got == {(o, w): trained_up_to(o, w) for o in OPTIMIZERS for w in (1, 8)}
    assert not bound["lower_bound"].any()  # every row's next cell ran and diverged
    grid = phase_grid(runs).set_index(["optimizer.name", "schedule.warmup_steps", "optimizer.lr"])
    assert (grid["runs"] == 2).all(), "a cell holds the seeds of one config, never two optimizers"
    assert grid.loc[("sgd", 1, 0.25), "best_test_acc"] == pytest.approx(0.805)
    assert grid.loc[("adam", 1, 0.25), "best_test_acc"] == pytest.approx(0.605)
    assert grid.loc[("adam", 1, 0.5), "state"] == "diverged" and grid.loc[("sgd", 1, 0.5), "state"] == "trained"
    fig = plot_phase(runs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["optimizer.name=adam", "optimizer.name=sgd"]


def test_cli_facets_by_what_differs(mixed_sweep, tmp_path, capsys):
    analysis_main(["phase", str(mixed_sweep), "--out", str(tmp_path / "new" / "out")])
    out = capsys.readouterr().out
    assert "the runs differ in optimizer.name: one panel and one eta_max per value, never averaged" in out
    saved = pd.read_csv(tmp_path / "new" / "out" / "eta_max.csv")
    assert saved.groupby("optimizer.name")["eta_max"].apply(list).to_dict() == {"adam": [0.25, 0.25], "sgd": [0.5, 1]}
    cells = pd.read_csv(tmp_path / "new" / "out" / "phase_best_test_acc.csv")
    assert len(cells) == 16 and set(cells["optimizer.name"]) == {"sgd", "adam"}
    assert (tmp_path / "new" / "out" / "phase_best_test_acc.png").stat().st_size > 10_000
    # --ignore pools a key like seeds: the user says it does not change results (here it does: 4 runs a cell)
    analysis_main(["phase", str(mixed_sweep), "--out", str(tmp_path), "--ignore", "optimizer"])
    assert pd.read_csv(tmp_path / "phase_best_test_acc.csv")["runs"].eq(4).all()


def test_a_key_changed_with_the_seed_is_kept_apart(tmp_path):
    """The issue's edited preset: seed 0 ran 600 steps, seed 1 ran 1200: not seeds of one config."""
    for lr in (0.5, 1.0):
        write_run(tmp_path / f"lr={lr},seed=0", lr=lr, seed=0, acc=0.9, steps=600)
        write_run(tmp_path / f"lr={lr},seed=1", lr=lr, seed=1, acc=0.9 if lr < 1 else 0.05, steps=1200)
    runs = load_runs(tmp_path)
    assert mixed_keys(runs) == ["steps"]
    got = eta_max(runs).set_index("steps")["eta_max"].to_dict()
    assert got == {600: 1.0, 1200: 0.5}  # pooled, eta_max would be 0.5 for "both"


def test_hand_built_table_and_unset_keys_are_faceted_too():
    """A table load_runs did not build (no attrs): dotted and top-level config columns; a key some runs lack."""
    rows = [
        {"optimizer.name": o, "optimizer.lr": lr, "schedule.warmup_steps": 1, "seed": 0, "status": "completed"}
        for o in ("sgd", "adam")
        for lr in (0.1, 0.2)
    ]
    runs = pd.DataFrame(rows).assign(final_test_acc=0.9, best_test_acc=0.9, num_classes=10, lambda0=[1, 2, 3, 4])
    assert mixed_keys(runs) == ["optimizer.name"]
    runs["optimizer.new_key"] = [np.nan, np.nan, 1.0, 1.0]  # a key only newer runs have: follows from the name here
    assert len(eta_max(runs)) == 2 and mixed_keys(runs) == ["optimizer.name"]
    runs["optimizer.new_key"] = [np.nan, 1.0, 1.0, 1.0]
    assert mixed_keys(runs) == ["optimizer.name", "optimizer.new_key"]
    assert set(eta_max(runs)["optimizer.new_key"].astype(str)) == {"1.0", "<unset>"}


def test_too_many_configs_are_refused_in_one_line(tmp_path, capsys):
    for width in range(MAX_PANELS + 1):
        write_run(tmp_path / f"width={width}", model={"name": "fcn", "width": width})
    with pytest.raises(ValueError, match=r"13 configs \(they differ in model.width\)"):
        plot_phase(load_runs(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["phase", str(tmp_path)])
    message = str(exit_.value.code)
    assert message.startswith("error: the runs hold 13 configs") and "\n" not in message
    assert not (tmp_path / "eta_max.csv").exists(), "refused before writing anything"


def test_wrong_typed_fields_are_skipped_and_counted(tmp_path, capsys):
    for lr in (0.25, 0.5):
        write_run(tmp_path / f"lr={lr}", lr=lr)
    bad = {"best_test_acc": "abc", "status": 3, "num_classes": [10], "final_test_acc": True}
    for key, value in bad.items():
        write_run(tmp_path / f"bad_{key}", lr=1.0)
        path = tmp_path / f"bad_{key}" / "result.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    write_run(tmp_path / "bad_config", lr="abc")
    write_run(tmp_path / "inf_loss", lr=2.0, acc=0.9)  # bench/runfolder/store.py writes inf as "inf": a number
    path = tmp_path / "inf_loss" / "result.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "best_test_loss": "inf"}))

    with pytest.warns(SkippedItems, match=r"^skipped 5 unreadable item\(s\)") as caught:
        runs = load_runs(tmp_path)
    text = str(caught[0].message)
    assert "best_test_acc is 'abc', not a number" in text and "status is 3, not one of" in text
    assert "config.yaml: optimizer.lr is 'abc'" in text and "final_test_acc is True" in text
    assert sorted(runs["optimizer.lr"]) == [0.25, 0.5, 2.0]
    assert runs.set_index("optimizer.lr").loc[2.0, "best_test_loss"] == np.inf

    analysis_main(["phase", str(tmp_path), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert captured.err.strip() == "warning: skipped 5 unreadable item(s) (--verbose names them)"
    assert eta_max(runs)["eta_max"].tolist() == [2.0]
    analysis_main(["phase", str(tmp_path), "--out", str(tmp_path / "out"), "--verbose"])
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "warning: skipped 5 unreadable item(s):" and len(err) == 6
    assert all(f"bad_{key}" in "\n".join(err) for key in bad)


def test_a_non_numeric_metric_is_one_line(tmp_path):
    write_run(tmp_path / "a")
    with pytest.raises(SystemExit, match=r"^error: git_sha is not a number in 1 run\(s\), e.g. 'abc0'"):
        analysis_main(["phase", str(tmp_path), "--metric", "git_sha", "--out", str(tmp_path / "out")])


def status_line(folder: Path, capsys) -> str:
    analysis_main(["status", str(folder)])
    return capsys.readouterr().out.strip()


def test_status_of_odd_folders_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        status_line(tmp_path / "empty", capsys)
        == f"{tmp_path / 'empty'}: not a sweep yet: no grid (multirun.yaml) and no run folders"
    )
    write_run(tmp_path / "single", seed=3)
    line = status_line(tmp_path / "single", capsys)
    assert line == f"{tmp_path / 'single'}: a single run's folder, not a sweep (no multirun.yaml): completed at step 12"
    (tmp_path / "single" / "result.json").unlink()
    assert status_line(tmp_path / "single", capsys).endswith("(no multirun.yaml): running at step 12")

    sweep = tmp_path / "sweep"
    write_run(sweep / "a", lr=0.25)
    write_run(sweep / "b", lr=0.5)
    write_run(sweep / "c", lr=1.0)
    (sweep / "a" / "metrics.csv").write_bytes(os.urandom(300) + b"\x00\xff")
    (sweep / "b" / "result.json").write_text('{"status": 3}')
    text = status_line(sweep, capsys)
    assert text.splitlines()[0] == f"{sweep}: 3 points: 2 completed, 0 diverged, 1 failed, 0 running, 0 missing"
    assert "b: result.json unreadable (status 3)" in text
    assert "a: metrics.csv unreadable (UnicodeDecodeError)" in text

    (sweep / "multirun.yaml").write_text("hydra: [unclosed\n")
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["status", str(sweep)])
    assert str(exit_.value.code).startswith(f"error: {sweep / 'multirun.yaml'} is unreadable: ")
    assert "\n" not in str(exit_.value.code)
    with pytest.raises(SystemExit, match="^error: not a folder: "):
        analysis_main(["status", str(sweep / "c" / "config.yaml")])


@pytest.fixture
def read_only(monkeypatch):
    """Writes under the returned folders fail as on a read-only mount (root ignores chmod, so simulate it)."""
    folders: list[Path] = []

    def blocked(path) -> bool:
        p = Path(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else None
        return p is not None and any(p.resolve().is_relative_to(f.resolve()) for f in folders)

    real_open, real_os_open = builtins.open, os.open

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and blocked(file):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and blocked(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    return folders


def test_read_only_sweep_folder_says_where_to_write(mixed_sweep, tmp_path, read_only):
    read_only.append(mixed_sweep)
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["phase", str(mixed_sweep)])
    message = str(exit_.value.code)
    expected = f"error: cannot write into {mixed_sweep} (Read-only file system): pass --out DIR to write the outputs"
    assert message == expected + " elsewhere"
    assert not list(mixed_sweep.glob("*.csv")) and not list(mixed_sweep.glob("*.parquet"))
    out = tmp_path / "elsewhere"
    analysis_main(["phase", str(mixed_sweep), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == [
        "eta_max.csv",
        "phase_best_test_acc.csv",
        "phase_best_test_acc.png",
    ]
    read_only.append(out)  # a failure while writing (not only the first probe) is the same one line
    with pytest.raises(
        SystemExit, match=r"^error: cannot write into .*elsewhere \(Read-only file system\): pass --out"
    ):
        analysis_main(["phase", str(mixed_sweep), "--out", str(out)])


@pytest.fixture
def sparse_sweep(tmp_path):
    """What a boundary search leaves: eta_trgt {0.25, 0.5, 1, 2}, only some cells of each T_wrm row ran.
    T_wrm 1: 0.25 trained, 0.5 diverged -> eta_max 0.25, exact.
    T_wrm 8: 1 and 2 trained, 2 is the top of the grid -> 2, a lower bound.
    T_wrm 64: 0.25 trained, 0.5 never ran, 1 diverged -> 0.25, a lower bound (0.5 may train)."""
    cells = {1: {0.25: 0.9, 0.5: None}, 8: {1.0: 0.9, 2.0: 0.8}, 64: {0.25: 0.9, 1.0: None}}
    for w, row in cells.items():
        for lr, acc in row.items():
            write_run(tmp_path / f"lr={lr},w={w}", lr=lr, warmup=w, acc=acc, status="completed" if acc else "diverged")
    return tmp_path


def test_sparse_grid_blank_cells_and_lower_bounds(sparse_sweep):
    runs = load_runs(sparse_sweep)
    bound = eta_max(runs).set_index("schedule.warmup_steps")
    assert bound["eta_max"].to_dict() == {1: 0.25, 8: 2.0, 64: 0.25}
    assert bound["lower_bound"].to_dict() == {1: False, 8: True, 64: True}
    grid = phase_grid(runs)
    assert len(grid) == 6 and set(grid["state"]) == {"trained", "diverged"}  # only the cells that ran

    fig = plot_phase(runs)
    ax = fig.axes[0]
    # rows T_wrm 64, 8, 1 (top to bottom), columns 0.25, 0.5, 1, 2: 6 cells ran, 6 never did
    mesh = ax.collections[0].get_array()
    blank = np.ma.getmaskarray(mesh).reshape(3, 4)
    marks = {(int(t.get_position()[1]), int(t.get_position()[0])) for t in ax.texts if t.get_text() == "x"}
    assert marks == {(0, 2), (2, 1)}  # the two diverged cells, hatched with a red x
    never_ran = {(0, 1), (0, 3), (1, 0), (1, 1), (2, 2), (2, 3)}
    assert {(i, j) for i, j in zip(*np.nonzero(blank))} == never_ran | marks  # colourless: never ran, or diverged
    assert not [p for p in ax.patches if (int(p.get_y()), int(p.get_x())) in never_ran], "never-ran cells: no patch"
    assert not [
        t for t in ax.texts if t.get_text() and (int(t.get_position()[1]), int(t.get_position()[0])) in never_ran
    ]
    lower = [line for line in ax.get_lines() if line.get_label() == r"$\eta_{max}$ is a lower bound"]
    assert len(lower) == 1 and sorted(lower[0].get_ydata()) == [0.5, 1.5]  # rows T_wrm 64 and 8
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "never ran (blank)" in labels and r"$\eta_{max}$ is a lower bound" in labels


def test_dense_single_config_sweep_is_as_before(tmp_path):
    """No mixture: no extra columns, no warnings, one panel titled as before."""
    for lr in (0.25, 0.5):
        for s in (0, 1):
            write_run(tmp_path / f"lr={lr},s={s}", lr=lr, seed=s, acc=0.9 if lr < 0.5 else 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = load_runs(tmp_path)
        assert mixed_keys(runs) == []
        assert eta_max(runs).to_dict("records") == [{"schedule.warmup_steps": 1, "eta_max": 0.25, "lower_bound": False}]
        assert list(phase_grid(runs).columns[:2]) == ["schedule.warmup_steps", "optimizer.lr"]
        assert [ax.get_title() for ax in plot_phase(runs).axes][0] == "best_test_acc over the (eta_trgt, T_wrm) grid"


@pytest.mark.slow
def test_real_mixed_optimizer_sweep(tmp_path):
    """Real runs of optimizer=sgd,adam (their resolved configs differ in many keys), sharing the cell eta_trgt = 1
    (SGD trains there, Adam diverges): one eta_max per optimizer, each its own runs' boundary."""
    from tests.sweeps import make_sweep

    grid = [["optimizer=sgd", f"optimizer.lr={lr}"] for lr in (1, 2, 16)]
    grid += [["optimizer=adam", f"optimizer.lr={lr}"] for lr in (0.001, 0.01, 1)]
    make_sweep(tmp_path, grid, "threads=1", "steps=40", "eval_every=20")
    runs = load_runs(tmp_path)
    assert mixed_keys(runs) == ["optimizer.name"]
    bound = eta_max(runs).set_index("optimizer.name")["eta_max"].to_dict()
    alone = {o: eta_max(runs[runs["optimizer.name"] == o])["eta_max"].item() for o in ("sgd", "adam")}
    assert bound == alone and bound["sgd"] > bound["adam"] > 0
    cell = phase_grid(runs).set_index(["optimizer.name", "optimizer.lr"])
    assert cell.loc[("sgd", 1.0), "state"] == "trained" and cell.loc[("adam", 1.0), "state"] == "diverged"


def test_odd_requests_are_one_line(mixed_sweep, tmp_path, capsys):
    with pytest.raises(SystemExit, match="^error: optimizer.lr is an axis of the diagram, not a facet$"):
        analysis_main(["phase", str(mixed_sweep), "--facet", "optimizer.lr", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="^error: no column 'optimzer.name' in the run table"):
        analysis_main(["phase", str(mixed_sweep), "--ignore", "optimzer.name", "--out", str(tmp_path)])
    # the same points in a second sweep folder: counted like seeds, and said so
    copy = tmp_path / "copy"
    for run in mixed_sweep.glob("optimizer=sgd,lr=0.25,*"):
        write_run(copy / run.name, "sgd", 0.25, int(run.name.split("warmup=")[1][0]), int(run.name[-1]))
    analysis_main(["phase", str(mixed_sweep), str(copy), "--out", str(tmp_path)])
    assert "note: 8 runs repeat another run's config and seed" in capsys.readouterr().out


def test_status_failure_without_traceback(tmp_path, capsys):
    write_run(tmp_path / "a", acc=None, status="failed")
    write_run(tmp_path / "b")
    text = status_line(tmp_path, capsys)
    assert "failures:\n  a: no error recorded in result.json\n" in text and "nan" not in text
    assert text.endswith("notes:\n  a: result.json does not match the schema: missing error")  # the contract's check


def test_sparse_grid_rows_and_columns_no_run_reached(sparse_sweep, capsys):
    """The grid in multirun.yaml: eta_trgt 4 and T_wrm 256 never ran anywhere, still drawn (blank)."""
    params = "optimizer.lr: 0.25,0.5,1,2,4\n      schedule.warmup_steps: 1,8,64,256"
    (sparse_sweep / "multirun.yaml").write_text(f"hydra:\n  sweeper:\n    params:\n      {params}\n")
    axes = axis_values([sparse_sweep], ["optimizer.lr", "schedule.warmup_steps"])
    assert axes == {"optimizer.lr": [0.25, 0.5, 1, 2, 4], "schedule.warmup_steps": [1, 8, 64, 256]}
    runs = load_runs(sparse_sweep)
    ax = plot_phase(runs, grid=axes).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["256", "64", "8", "1"]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "$2^{2}$"
    blank = np.ma.getmaskarray(ax.collections[0].get_array()).reshape(4, 5)
    assert blank[0].all() and blank[:, 4].all()  # the row and the column no run reached
    analysis_main(["phase", str(sparse_sweep)])
    assert "lower_bound" in capsys.readouterr().out
    saved = pd.read_csv(sparse_sweep / "eta_max.csv").set_index("schedule.warmup_steps")
    assert saved["lower_bound"].to_dict() == {1: False, 8: True, 64: True}


def test_status_matches_a_folder_without_its_overrides_by_name(tmp_path, capsys):
    from bench.runfolder import run_id

    (tmp_path / "multirun.yaml").write_text("hydra:\n  sweeper:\n    params:\n      optimizer.lr: 0.25,0.5,1\n")
    for lr in (0.25, 0.5):
        write_run(tmp_path / run_id([f"optimizer.lr={lr}"]), lr=lr)
    (tmp_path / run_id(["optimizer.lr=0.5"]) / "result.json").write_text("[1, 2]")
    text = status_line(tmp_path, capsys)
    assert text.splitlines()[0].endswith("3 points: 1 completed, 0 diverged, 1 failed, 0 running, 1 missing")
    assert "result.json unreadable (not a run's result)" in text
    assert text.count("no readable .hydra/overrides.yaml (matched by its folder name)") == 2
