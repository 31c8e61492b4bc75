"""The leaderboard's scoring against hand-computed tables: performance profiles and B, LR sensitivity with capped
divergent runs, steps to target with a never-reached entry, bootstrap determinism, eta_max = analysis phase's, and
the report's files."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.leaderboard import report
from analysis.leaderboard.scores import COLUMNS, metrics, profile, ratios, score, scores, warmup_matters
from analysis.phase import eta_max as phase_eta_max
from bench.runfolder import trainable

INF = math.inf


def run(workload="w", entry="e", eta=0.1, seed=0, status="completed", loss=1.0, curve=(), trained=None, **extra):
    """One row of the runs table (the leaderboard contract's columns)."""
    completed = status == "completed"
    row = {
        "workload": workload,
        "entry": entry,
        "eta_trgt": eta,
        "seed": seed,
        "status": status,
        "trained": completed if trained is None else trained,
        "rule": "test",
        "initial_loss": 2.0,
        "final_test_loss": loss if completed else np.nan,
        "final_test_acc": 0.9 if completed else np.nan,
        "test_loss_curve": json.dumps([list(p) for p in curve]),
        "steps": 64,
        "extra_forward_passes": 0,
        "extra_gradients": 0,
        "wall_time_s": 1.0,
        "run_identity": f"{workload}-{entry}-{eta}-{seed}",
        "git_sha": "0" * 40,
    }
    return {**row, **extra}


def synthetic_runs(matters: bool = True) -> pd.DataFrame:
    """2 workloads x 3 entries x 3 rates x 2 seeds (36 runs): each entry diverges above its own largest stable rate
    on `sgd_w`; on `flat_w` every entry diverges at the top rate alone unless `matters` (then as on sgd_w)."""
    rng = np.random.default_rng(0)
    stable = {"no_warmup": 0.1, "linear_5pct": 0.2, "catapult": 0.4}
    rows = []
    for workload in ("flat_w", "sgd_w"):
        for entry, top in stable.items():
            top = top if matters or workload == "sgd_w" else 0.2
            for eta in (0.1, 0.2, 0.4):
                for seed in (0, 1):
                    if eta > top:
                        rows.append(run(workload, entry, eta, seed, "diverged", curve=[(0, 2.0), (32, np.nan)]))
                        continue
                    final = 0.3 / eta**0.5 + 0.02 * rng.random()
                    curve = [(0, 2.0), (32, (2.0 + final) / 2), (64, final)]
                    passes = 12 if entry == "catapult" else 0
                    rows.append(run(workload, entry, eta, seed, loss=final, curve=curve, extra_forward_passes=passes))
    return pd.DataFrame(rows)


def hand_metrics() -> pd.DataFrame:
    """Steps to target and sensitivity on 2 workloads x 3 entries (C does not apply to w2), with 5 bootstrap
    replicates: in 2 of them A reaches w2's target at step 50 (it and B swap ranks)."""
    rows = [
        ("w1", "A", 100, [100] * 5, 0.1),
        ("w1", "B", 200, [200] * 5, 0.0),
        ("w1", "C", INF, [INF] * 5, 0.2),
        ("w2", "A", 300, [300, 300, 300, 50, 50], 0.3),
        ("w2", "B", 100, [100] * 5, 0.6),
    ]
    return pd.DataFrame(
        [
            {
                "workload": w,
                "entry": e,
                "steps_to_target": t,
                "steps_to_target_boot": np.array(boot, dtype=float),
                "sensitivity": s,
                "sensitivity_boot": np.full(5, s),
                "initial_loss": 2.0,
            }
            for w, e, t, boot, s in rows
        ]
    )


def test_ratios_profile_and_score_by_hand():
    t = np.array([[100, 200, INF], [300, 100, 150]])  # 2 workloads x 3 entries
    r = ratios(t)
    assert r.tolist() == [[1, 2, INF], [3, 1, 1.5]]
    rho = profile(r, np.array([1, 1.5, 2, 3, 4]))
    assert rho.T.tolist() == [[0.5, 0.5, 0.5, 1, 1], [0.5, 0.5, 1, 1, 1], [0, 0.5, 0.5, 0.5, 0.5]]
    b = score(r)  # B = mean over workloads of (4 - r) / 3, r = inf adds 0
    assert b == pytest.approx([(3 + 1) / 6, (2 + 3) / 6, (0 + 2.5) / 6])
    taus = np.linspace(1, 4, 30001)  # B is the profile's integral over [1, 4] / 3
    integral = np.trapezoid(profile(r, taus), taus, axis=0) / 3
    assert integral == pytest.approx(b, abs=1e-3)
    assert ratios(np.array([[INF, INF]])).tolist() == [[INF, INF]]  # nobody reached it: nobody is counted
    assert ratios(np.array([[0.0, 0.1]]), eps=np.array([0.01]))[0] == pytest.approx([1, 11])  # min 0: (t+eps)/eps


def test_scores_by_hand_with_a_missing_entry_ties_and_rank_stability():
    board = scores(hand_metrics()).set_index("entry")
    # steps: w1 ratios A 1, B 2, C inf; w2 A 3, B 1; C applies to w1 only
    assert board["workloads"].to_dict() == {"A": 2, "B": 2, "C": 1}
    assert board["B_steps"].to_dict() == pytest.approx({"A": 4 / 6, "B": 5 / 6, "C": 0.0})
    # sensitivity, eps = 1e-3 x L0 = 0.002: w1 A 0.102/0.002 = 51 (> 4: 0), B 1, C 0; w2 A 1, B 0.602/0.302
    b_w2 = (4 - 0.602 / 0.302) / 3
    assert board["B_sensitivity"].to_dict() == pytest.approx({"A": 0.5, "B": (1 + b_w2) / 2, "C": 0.0})
    assert board["rank"].to_dict() == {"B": 1, "A": 2, "C": 3}
    # replicates 4 and 5: A reaches w2 at 50: B_A = (3 + 3) / 6 = 1, B_B = (2 + 2) / 6: they swap
    assert board.loc["A", ["B_steps_lo", "B_steps_hi"]].tolist() == pytest.approx([4 / 6, 1])
    assert board.loc["B", ["B_steps_lo", "B_steps_hi"]].tolist() == pytest.approx([4 / 6, 5 / 6])
    assert board["rank_label"].to_dict() == {"B": "=1", "A": "=1", "C": "3"}  # overlapping intervals: tied
    assert board["rank_stability"].to_dict() == pytest.approx({"B": 0.6, "A": 0.6, "C": 1.0})
    assert board["rank_sensitivity_stability"].tolist() == [1.0, 1.0, 1.0]
    bare = scores(drop_boot(hand_metrics())).set_index("entry")  # no replicates (leaderboard.csv): no intervals
    assert bare["B_steps"].to_dict() == board["B_steps"].to_dict() and bare["rank_stability"].isna().all()
    assert bare["rank_label"].to_dict() == {"B": "1", "A": "2", "C": "3"}


def test_sensitivity_counts_diverged_runs_as_the_initial_loss():
    rows = [run(eta=0.1, seed=s, loss=v) for s, v in enumerate([1.0, 1.2, 1.1])]  # median 1.1
    rows += [run(eta=0.2, seed=s, loss=v) for s, v in enumerate([0.5, 0.7, 0.6])]  # median 0.6 = L*
    rows += [
        run(eta=0.4, seed=0, status="diverged"),  # L0 = 2.0
        run(eta=0.4, seed=1, loss=2.5, trained=False),  # completed above L0: capped at 2.0
        run(eta=0.4, seed=2, loss=0.9),
    ]  # median of (2.0, 2.0, 0.9): 2.0
    rows += [run(entry="dead", eta=eta, seed=0, status="diverged") for eta in (0.1, 0.2)]
    m = metrics(pd.DataFrame(rows), {"w": 0.5}, n_boot=50).set_index("entry")
    assert m.loc["e", "sensitivity"] == pytest.approx((1.1 + 0.6 + 2.0) / 3 - 0.6)
    assert m.loc["e", "best_test_loss"] == pytest.approx(0.6) and m.loc["e", "best_eta"] == 0.2
    assert m.loc["e", "sensitivity_lo"] <= m.loc["e", "sensitivity"] <= m.loc["e", "sensitivity_hi"]
    assert m.loc["e", "eta_max"] == 0.2 and not m.loc["e", "eta_max_lower_bound"]
    assert m.loc["dead", "sensitivity"] == INF  # no rate trained: not a flat (perfect) curve
    assert np.isnan(m.loc["dead", "eta_max"]) and m.loc["dead", "best_test_loss"] == INF


def test_steps_to_target_with_a_never_reached_entry():
    slow = [(0, 2.0), (10, 1.0), (20, 0.4)]
    rows = [run(entry="A", eta=0.1, seed=s, curve=slow) for s in range(2)]
    rows.append(run(entry="A", eta=0.1, seed=2, status="diverged", curve=[(0, 2.0), (10, 1.0)]))  # 20: inf
    rows += [run(entry="A", eta=0.2, seed=s, curve=[(0, 2.0), (10, v), (20, 0.3)]) for s, v in enumerate([0.45, 0.6])]
    rows.append(run(entry="A", eta=0.2, seed=2, curve=[(0, 2.0), (10, 0.4), (20, 0.3)]))  # median at 10: 0.45
    rows += [
        run(entry="B", eta=eta, seed=s, curve=[(0, 2.0), (10, 0.9), (20, 0.8)]) for eta in (0.1, 0.2) for s in (0, 1)
    ]
    rows += [run(entry="no_warmup", eta=0.1, seed=s, curve=[(0, 2.0), (10, 0.5), (20, 0.2)]) for s in (0, 1)]
    m = metrics(pd.DataFrame(rows), {"w": 0.5}, n_boot=20).set_index("entry")
    assert m["steps_to_target"].to_dict() == {"A": 10.0, "B": INF, "no_warmup": 10.0}
    assert m.loc["B", ["steps_to_target_lo", "steps_to_target_hi"]].tolist() == [INF, INF]
    board = scores(m.reset_index()).set_index("entry")
    assert board.loc["B", "B_steps"] == 0.0  # r = inf: never within tau of the best
    assert board.loc["A", "B_steps"] == board.loc["no_warmup", "B_steps"] == 1.0


def drop_boot(m: pd.DataFrame) -> pd.DataFrame:
    return m.drop(columns=[c for c in m if c.endswith("_boot")])


def test_bootstrap_is_deterministic_and_the_seed_moves_only_intervals(tmp_path):
    runs = synthetic_runs()
    targets = {"flat_w": 0.6, "sgd_w": 0.6}
    first, again = (
        metrics(runs, targets, n_boot=200, seed=0),
        metrics(runs.sample(frac=1, random_state=3), targets, 200),
    )
    pd.testing.assert_frame_equal(drop_boot(first), drop_boot(again))  # same runs in any row order: same numbers
    assert all(np.array_equal(a, b) for a, b in zip(first["sensitivity_boot"], again["sensitivity_boot"]))
    pd.testing.assert_frame_equal(scores(first), scores(again))
    runs.to_csv(tmp_path / "runs.csv", index=False)  # the stored table, read back: the same numbers
    pd.testing.assert_frame_equal(
        drop_boot(metrics(pd.read_csv(tmp_path / "runs.csv"), targets, 200)), drop_boot(first)
    )
    other = metrics(runs, targets, n_boot=200, seed=1)
    points = [c for c in drop_boot(first) if not c.endswith(("_lo", "_hi"))]
    pd.testing.assert_frame_equal(first[points], other[points])  # the point estimates use every seed once
    assert not np.array_equal(first["sensitivity_boot"].iloc[0], other["sensitivity_boot"].iloc[0])  # resamples


def test_eta_max_is_analysis_phases():
    """The same runs as analysis phase reads them (one T_wrm per entry) and as leaderboard rows."""
    cols = ["schedule.warmup_steps", "optimizer.lr", "seed", "status", "final_test_acc"]
    phase_runs = pd.DataFrame(
        [
            (0, 0.1, 0, "completed", 0.9),
            (0, 0.1, 1, "completed", 0.9),
            (0, 0.2, 0, "completed", 0.9),
            (0, 0.2, 1, "diverged", np.nan),  # not every seed: 0.2 does not count
            (0, 0.4, 0, "completed", 0.8),
            (0, 0.4, 1, "completed", 0.9),  # an isolated trainable rate above a failed one counts (phase's rule)
            (8, 0.1, 0, "completed", 0.9),
            (8, 0.2, 0, "completed", 0.1),  # below 1.5 / 10: not trained
            (8, 0.4, 0, "completed", 0.9),
            (8, 0.4, 1, "failed", np.nan),
            (64, 0.1, 0, "diverged", np.nan),  # nothing trains: NaN
        ],
        columns=cols,
    ).assign(num_classes=10)
    expected = phase_eta_max(phase_runs).set_index("schedule.warmup_steps")["eta_max"]
    rows = [
        run(
            entry=f"T{r['schedule.warmup_steps']}", eta=r["optimizer.lr"], seed=r["seed"], status=r["status"], trained=t
        )
        for (_, r), t in zip(phase_runs.iterrows(), trainable(phase_runs, "test"))
    ]
    got = metrics(pd.DataFrame(rows), {"w": 0.5}, n_boot=0).set_index("entry")["eta_max"]
    assert got.to_dict() == pytest.approx({f"T{k}": v for k, v in expected.items()}, nan_ok=True)
    assert got.to_dict() == pytest.approx({"T0": 0.4, "T8": 0.1, "T64": np.nan}, nan_ok=True)


def test_warmup_matters_and_the_report_writes_every_file(tmp_path):
    runs = synthetic_runs(matters=False)
    assert len(runs) == 36
    info = {
        w: {"target_test_loss": 0.6, "tier": "cpu", "family": "sgd", "rule": "test", "comment": "why"}
        for w in ("flat_w", "sgd_w")
    }
    info["gpu_w"] = {"target_test_loss": 3.0, "tier": "gpu", "family": "adam", "rule": "test", "comment": ""}
    table = metrics(runs, {w: i["target_test_loss"] for w, i in info.items()}, n_boot=50)
    assert warmup_matters(table) == {"flat_w": False, "sgd_w": True}
    nan_rows = {"workload": [*"aabbc"], "entry": ["no_warmup", "x"] * 2 + ["x"], "eta_max": [np.nan] * 3 + [0.1, 0.2]}
    assert warmup_matters(pd.DataFrame(nan_rows)) == {"a": False, "b": True, "c": False}  # c: no no_warmup to compare
    assert table.set_index(["workload", "entry"]).loc[("sgd_w", "catapult"), "eta_max_gain"] == 4.0
    assert table["cost_fraction"].max() == pytest.approx(12 / 3 / 64)  # 12 forward passes = 4 passes, of 64 steps

    written = report.write(runs, info, tmp_path / "out", note="A synthetic table.")
    names = {"leaderboard.md", "leaderboard.csv", "profile_steps_to_target.png", "profile_sensitivity.png"}
    names |= {"rank_stability.png", "loss_vs_eta_flat_w.png", "loss_vs_eta_sgd_w.png"}
    assert {p.name for p in written} == names == {p.name for p in (tmp_path / "out").iterdir()}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written if p.suffix == ".png")
    csv = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert len(csv) == 6 and {"eta_max", "eta_max_gain", "sensitivity_lo", "steps_to_target_hi"} <= set(csv)
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "A synthetic table." in md and "## A small-scale CPU proxy" in md and "What the GPU tier would add" in md
    assert "### flat_w — why" in md and "**Warmup does not matter here by eta_max**" in md
    assert "**Warmup matters here**: 2 of 2 entries" in md and "`gpu_w`" in md
    for name in names - {"leaderboard.md", "leaderboard.csv"}:
        assert f"({name})" in md  # every figure is shown


def test_bad_tables_get_one_line(tmp_path):
    runs = synthetic_runs()
    with pytest.raises(ValueError, match="^no workload info \\(its YAML\\) for workload flat_w$"):
        report.write(runs, {"sgd_w": {"target_test_loss": 0.5}}, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="^no target_test_loss for workload sgd_w$"):
        metrics(runs, {"flat_w": 0.5})
    with pytest.raises(ValueError, match="^the runs table has no column trained$"):
        metrics(runs.drop(columns="trained"), {"flat_w": 0.5, "sgd_w": 0.5})
    with pytest.raises(ValueError, match="empty"):
        metrics(runs.iloc[:0], {})
    with pytest.raises(ValueError, match="^the target_test_loss of workload sgd_w is nan, not a number$"):
        metrics(runs, {"flat_w": 0.5, "sgd_w": float("nan")})
    targets = {"flat_w": 0.5, "sgd_w": 0.5}
    with pytest.raises(ValueError, match=r"^2 rows of the runs table share their workload, entry, eta_trgt, seed"):
        metrics(pd.concat([runs, runs.iloc[:1]]), targets)
    with pytest.raises(ValueError, match="^trained is not true or false in 1 run"):
        metrics(runs.assign(trained=[*runs["trained"].iloc[:-1], "maybe"]), targets)
    with pytest.raises(ValueError, match="^test_loss_curve is not a list of"):
        metrics(runs.assign(test_loss_curve=[*runs["test_loss_curve"].iloc[:-1], "[[0, 2.0"]), targets)
    assert set(COLUMNS) <= set(runs)
