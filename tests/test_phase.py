"""Phase diagrams: cell states, seed means and spreads, the boundary eta_max(T_wrm), facets, ticks, the PNG."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import load_runs
from analysis.__main__ import main as analysis_main
from analysis.phase import eta_max, lr_unit, phase_grid, plot_phase, run_state, tick, trainable
from tests.sweeps import phase_sweep
from tests.test_phase_configs import write_run


def runs_table(rows):
    """(optimizer, lr, warmup, seed, status, final_test_acc) -> a run table like load_runs's."""
    cols = ["optimizer.name", "optimizer.lr", "schedule.warmup_steps", "seed", "status", "final_test_acc"]
    df = pd.DataFrame(rows, columns=cols)
    return df.assign(best_test_acc=df["final_test_acc"] + 0.01, num_classes=10)


SYNTHETIC = runs_table(
    [
        ("sgd", 0.5, 1, 0, "completed", 0.80),
        ("sgd", 0.5, 1, 1, "completed", 0.90),
        ("sgd", 1.0, 1, 0, "completed", 0.70),
        ("sgd", 1.0, 1, 1, "diverged", np.nan),  # one seed diverged: not every seed trains
        ("sgd", 2.0, 1, 0, "diverged", np.nan),
        ("sgd", 0.5, 8, 0, "completed", 0.85),
        ("sgd", 1.0, 8, 0, "completed", 0.75),
        ("sgd", 2.0, 8, 0, "completed", 0.12),  # below 1.5 / 10: did not train
        ("adam", 0.5, 1, 0, "failed", np.nan),
        ("adam", 1.0, 1, 0, "completed", 0.60),
    ]
)


def test_cells_states_means_and_spread():
    sgd = SYNTHETIC[SYNTHETIC["optimizer.name"] == "sgd"]
    grid = phase_grid(sgd).set_index(["schedule.warmup_steps", "optimizer.lr"])
    assert grid.loc[(1, 0.5), "best_test_acc"] == pytest.approx(0.86)
    assert grid.loc[(1, 0.5), "best_test_acc_std"] == pytest.approx(np.std([0.81, 0.91], ddof=1))
    assert grid.loc[(1, 1.0), ["runs", "trainable", "diverged", "state"]].tolist() == [2, 1, 1, "trained"]
    assert grid.loc[(1, 2.0), "state"] == "diverged" and np.isnan(grid.loc[(1, 2.0), "best_test_acc"])
    assert grid.loc[(8, 2.0), "state"] == "not trained" and grid.loc[(8, 2.0), "not_trained"] == 1
    states = run_state(SYNTHETIC).tolist()
    assert states[8] == "failed" and states[7] == "not trained" and states[3] == "diverged"


def test_boundary_per_facet():
    bound = eta_max(SYNTHETIC, by="optimizer.name")
    got = {(r["optimizer.name"], r["schedule.warmup_steps"]): r["eta_max"] for _, r in bound.iterrows()}
    assert got == {("adam", 1): 1.0, ("sgd", 1): 0.5, ("sgd", 8): 1.0}


def boundary(bound: pd.DataFrame) -> dict:
    """{(optimizer, T_wrm): eta_max} where some eta_trgt trains."""
    bound = bound.dropna(subset="eta_max")
    return {(r["optimizer.name"], r["schedule.warmup_steps"]): r["eta_max"] for _, r in bound.iterrows()}


def rule_table(rows):
    """(optimizer, lr, T_wrm, status, final_test_acc, last_train_acc, final_train_acc) -> a run table; Adam-family
    runs carry optimizer.b1, as load_runs gives them."""
    cols = ["optimizer.name", "optimizer.lr", "schedule.warmup_steps", "status", "final_test_acc"]
    df = pd.DataFrame(rows, columns=[*cols, "last_train_acc", "final_train_acc"])
    b1 = np.where(df["optimizer.name"] == "sgd", np.nan, 0.9)
    return df.assign(**{"optimizer.b1": b1, "seed": 0, "num_classes": 10})


RULE_RUNS = rule_table(
    [
        ("adam", 0.1, 1, "completed", 0.90, 0.05, 0.9),  # NaN-free, high test accuracy, last minibatch 0.05 < 0.15
        ("adam", 0.2, 1, "completed", 0.10, 0.40, 0.4),  # last minibatch above 1.5/10, test accuracy below
        ("sgd", 0.1, 1, "completed", 0.05, 0.05, 0.05),  # low accuracy, finite loss
        ("sgd", 0.2, 1, "diverged", np.nan, np.nan, np.nan),  # stopped by the harness: fails under both
        ("adam", 0.4, 8, "completed", 0.90, np.nan, 0.50),  # written before last_train_acc: final_train_acc stands in
        ("adam", 0.8, 8, "completed", 0.90, np.nan, 0.10),
    ]
)


def test_the_authors_rule_and_the_test_rule_on_hand_made_runs():
    assert trainable(RULE_RUNS).tolist() == [True, False, False, False, True, True]  # test, the default
    assert trainable(RULE_RUNS, "authors").tolist() == [False, True, True, False, True, False]
    assert run_state(RULE_RUNS, "authors").tolist()[:4] == ["not trained", "trained", "trained", "diverged"]
    assert boundary(eta_max(RULE_RUNS, by="optimizer.name")) == {("adam", 1): 0.1, ("adam", 8): 0.8}
    assert boundary(eta_max(RULE_RUNS, by="optimizer.name", rule="authors")) == {
        ("adam", 1): 0.2,
        ("adam", 8): 0.4,
        ("sgd", 1): 0.1,
    }
    with pytest.raises(ValueError, match="rule 'Authors': must be one of test, authors"):
        trainable(RULE_RUNS, "Authors")


def test_phase_names_its_rule_and_refuses_a_bad_one_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as bad:
        analysis_main(["phase", str(tmp_path / "sweep"), "--rule", "strict", "--out", str(tmp_path / "out")])
    assert bad.value.code == "error: rule 'strict': must be one of test, authors"  # exit status 1, one line
    assert not (tmp_path / "out").exists()  # refused before anything was read or written
    for i, row in RULE_RUNS.iterrows():
        opt, lr, t_wrm = row["optimizer.name"], row["optimizer.lr"], row["schedule.warmup_steps"]
        write_run(tmp_path / "sweep" / str(i), opt, lr, t_wrm, status=row["status"])
        path = tmp_path / "sweep" / str(i) / "result.json"
        keys = ("final_test_acc", "last_train_acc", "final_train_acc")
        result = {**json.loads(path.read_text()), **{k: None if np.isnan(row[k]) else row[k] for k in keys}}
        path.write_text(json.dumps({k: v for k, v in result.items() if v is not None or k != "last_train_acc"}))
    analysis_main(["phase", str(tmp_path / "sweep"), "--rule", "authors", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "trained by rule authors: Adam family: last training minibatch" in out
    assert "note: 2 Adam-family run(s) have no last_train_acc" in out
    saved = pd.read_csv(tmp_path / "out" / "eta_max.csv")
    assert set(saved["rule"]) == {"authors"} and boundary(saved) == boundary(eta_max(RULE_RUNS, rule="authors"))
    assert set(pd.read_csv(tmp_path / "out" / "phase_best_test_acc.csv")["rule"]) == {"authors"}


def test_ticks_powers_of_two_and_inverse_sharpness():
    assert tick(0.125) == "$2^{-3}$" and tick(0.02048) == "0.0205"
    assert tick(8.0, "inverse_sharpness") == "$2^{3}/\\lambda_0$"
    mixed = SYNTHETIC.assign(**{"optimizer.lr_unit": ["absolute"] * 9 + ["inverse_sharpness"]})
    with pytest.raises(ValueError, match="facet by optimizer.lr_unit"):
        lr_unit(mixed)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return phase_sweep(tmp_path_factory)


@pytest.mark.slow
def test_real_sweep_boundary_and_png(sweep, tmp_path, capsys):
    runs = load_runs(sweep)
    assert len(runs) == 12
    expected = {}  # the boundary, computed here from the results by the rule itself
    for (w, lr), cell in runs.groupby(["schedule.warmup_steps", "optimizer.lr"]):
        if all(r["status"] == "completed" and r["final_test_acc"] >= 0.15 for _, r in cell.iterrows()):
            expected[w] = max(expected.get(w, 0), lr)
    bound = eta_max(runs).set_index("schedule.warmup_steps")["eta_max"]
    assert bound.dropna().to_dict() == expected
    assert "diverged" in set(run_state(runs))
    fig = plot_phase(runs, annot_std=True)
    ax = fig.axes[0]
    boundary = [line for line in ax.get_lines() if line.get_label() == r"$\eta_{max}(T_{wrm})$"]
    assert len(boundary) == 1 and len(boundary[0].get_xdata()) == 2 * len(expected)
    assert any(t.get_text() == "x" for t in ax.texts)  # diverged cells are marked
    analysis_main(["phase", str(sweep), "--out", str(tmp_path), "--facet", "seed", "--std"])
    out = capsys.readouterr().out
    assert "largest trainable eta_trgt" in out and (tmp_path / "phase_best_test_acc.png").stat().st_size > 10_000
    saved = pd.read_csv(tmp_path / "eta_max.csv")
    assert list(saved.columns) == ["seed", "schedule.warmup_steps", "eta_max", "lower_bound", "rule"]
    assert len(saved) == 4 and set(saved["rule"]) == {"test"}  # the default rule, named
    assert set(pd.read_csv(tmp_path / "phase_best_test_acc.csv")["rule"]) == {"test"}
    assert "trained by rule test: final test accuracy" in out


def test_axis_in_units_of_inverse_sharpness():
    sgd = SYNTHETIC[SYNTHETIC["optimizer.name"] == "sgd"].assign(**{"optimizer.lr_unit": "inverse_sharpness"})
    ax = plot_phase(sgd).axes[0]
    assert "1/\\lambda_0" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "$2^{-1}/\\lambda_0$",
        "$2^{0}/\\lambda_0$",
        "$2^{1}/\\lambda_0$",
    ]
    marks = sorted(t.get_text() for t in ax.texts if t.get_text() in ("x", "–", "!"))
    assert marks == ["x", "–"]  # (T_wrm 1, 2): diverged; (T_wrm 8, 2): not trained
