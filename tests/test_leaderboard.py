"""The leaderboard's runner (analysis/leaderboard/: spec, runs, the CLI): a QUICK leaderboard end to end, its eta_max
against `analysis phase`'s on the same run folders, a method from a package outside the project joining through its
entry point and one YAML, and the one-line refusals. The QUICK run is paid once (module-scoped) and reused."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from analysis import eta_max, load_runs
from analysis.leaderboard import runs as lb
from analysis.leaderboard.__main__ import QUICK_ENTRIES, QUICK_OVERRIDES, QUICK_SEEDS, QUICK_WORKLOAD, main, quick_rates
from analysis.leaderboard.spec import SpecError, load_entries, load_workload, load_workloads, merged_overrides

REPORT_FILES = ("leaderboard.md", "leaderboard.csv", "profile_steps_to_target.png", "profile_sensitivity.png")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    """`python -m analysis.leaderboard --quick --out DIR`: runs, stored table and report all in DIR."""
    out = tmp_path_factory.mktemp("quick")
    main(["--quick", "--out", str(out)])
    return out


def _error(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    message = str(e.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_quick_writes_every_file_and_the_runs_table(quick):
    for name in (*REPORT_FILES, f"loss_vs_eta_{QUICK_WORKLOAD}.png"):
        assert (quick / name).stat().st_size > 0, name
    table = lb.read_table(quick / lb.STORED)
    assert list(table.columns) == lb.TABLE_COLUMNS
    assert set(table["entry"]) == set(QUICK_ENTRIES) and set(table["workload"]) == {QUICK_WORKLOAD}
    assert len(table) == len(QUICK_ENTRIES) * 4 * QUICK_SEEDS  # four rates, two seeds
    assert not table.duplicated(lb.KEY).any()
    completed = table[table["status"] == "completed"]
    assert not completed.empty and completed["final_test_loss"].notna().all()
    assert table.loc[table["status"] != "completed", "final_test_acc"].isna().all()
    curve = json.loads(completed["test_loss_curve"].iloc[0])
    assert [s for s, _ in curve] == [32, 64, 96, 128]  # QUICK: 128 steps, an evaluation every 32
    assert curve[-1][1] == pytest.approx(completed["final_test_loss"].iloc[0])
    assert (table["steps"] == 128).all() and (table["extra_gradients"] == 0).all()


def test_quick_eta_max_is_the_phase_diagrams(quick):
    from analysis.leaderboard.scores import metrics

    table = lb.read_table(quick / lb.STORED)
    workload = load_workloads()[QUICK_WORKLOAD]
    board = metrics(table, {QUICK_WORKLOAD: workload.target_test_loss}, n_boot=50).set_index("entry")
    for entry in QUICK_ENTRIES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs = load_runs(quick / QUICK_WORKLOAD / entry)
        phase = eta_max(runs, rule=workload.rule)
        assert len(phase) == 1
        assert board.loc[entry, "eta_max"] == pytest.approx(phase["eta_max"].iloc[0], nan_ok=True), entry


def test_quick_plus_a_method_from_an_outside_package_through_its_entry_point_and_one_yaml(quick, tmp_path, monkeypatch):
    """ENTRY mode against the QUICK stored table (a copy): the package's method runs on the QUICK workload, its rows
    join the table, the others' rows are kept as they were, and the report names it."""
    from tests.helpers import plugin_package

    site, conf = plugin_package(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(site))  # installed as pip would leave it: on the path of the runs
    reports = tmp_path / "reports"
    (reports / lb.STORED).parent.mkdir(parents=True)
    shutil.copy(quick / lb.STORED, reports / lb.STORED)
    before = lb.read_table(reports / lb.STORED)
    main(
        [
            "--quick",
            "--entry",
            "my_sqrt",
            "--config-dir",
            str(conf),
            "--out",
            str(tmp_path / "out"),
            "--reports",
            str(reports),
        ]
    )
    table = lb.read_table(reports / lb.STORED)
    mine = table[table["entry"] == "my_sqrt"]
    assert len(mine) == 4 * QUICK_SEEDS and (mine["status"] == "completed").any()
    assert set(mine["eta_trgt"]) == set(before["eta_trgt"])
    others = table[table["entry"] != "my_sqrt"].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, before)
    assert "my_sqrt" in (reports / "leaderboard.md").read_text()


def test_quick_an_edited_workload_reads_only_its_own_points_and_drops_rows_off_its_grid(quick):
    """Editing a workload and rerunning: the sweep folder's runs of the old config are not the new plan's, and the
    stored rows off the new grid go when the plan's rows are merged."""
    workload, entry = load_workloads()[QUICK_WORKLOAD], load_entries()[QUICK_ENTRIES[0]]
    lrs = quick_rates(workload.lrs)
    plan = lb.Plan(workload, entry, lrs, QUICK_SEEDS, QUICK_OVERRIDES)
    sweep, stored = lb.sweep_dir(quick, plan), lb.read_table(quick / lb.STORED)
    assert len(lb.table(sweep, plan)) == len(lrs) * QUICK_SEEDS
    assert lb.table(sweep, dataclasses.replace(plan, extra=(*QUICK_OVERRIDES, "batch_size=64"))).empty
    smaller = dataclasses.replace(plan, lrs=lrs[:2])
    assert len(lb.table(sweep, smaller)) == 2 * QUICK_SEEDS
    dropped = stored[lb.off_grid(stored, smaller)]
    assert len(dropped) == 2 * QUICK_SEEDS and set(dropped["eta_trgt"]) == set(lrs[2:])
    assert set(dropped["entry"]) == {entry.name}


def test_merge_replaces_rows_with_the_same_key():
    row = dict.fromkeys(lb.TABLE_COLUMNS, 0) | {"workload": "w", "entry": "e", "eta_trgt": 0.5, "seed": 0}
    stored = pd.DataFrame([row, row | {"seed": 1}])
    new = pd.DataFrame([row | {"final_test_loss": 9.0}, row | {"entry": "f"}])
    merged = lb.merge(stored, new)
    assert len(merged) == 3
    assert merged.set_index(lb.KEY).loc[("w", "e", 0.5, 0), "final_test_loss"] == 9.0


def test_an_entry_replaces_the_workloads_keys():
    workload = load_workloads()["fcn_mup_xent_adam"]
    entry = load_entries()["gi_adam"]
    merged = merged_overrides(workload, entry, ("steps=8",))
    assert "optimizer=gi_adam" in merged and "optimizer=adam" not in merged and "steps=8" in merged
    assert "model.param=mup" in merged


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--entry", "nope"], "unknown entry 'nope': the entries are"),
        (["--workload", "nope"], "unknown workload 'nope': the workloads are"),
        (["--entry", "gi_adam", "--workload", "fcn_sp_mse_sgd"], "entry gi_adam applies to adam, workload fcn_sp"),
    ],
)
def test_bad_names_and_a_family_mismatch_are_one_line_before_any_run(tmp_path, argv, says):
    (tmp_path / lb.STORED).parent.mkdir(parents=True)
    message = _error([*argv, "--out", str(tmp_path / "out"), "--reports", str(tmp_path)])
    assert says in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_missing_stored_table_says_how_to_make_it(tmp_path):
    message = _error(["--entry", "no_warmup", "--out", str(tmp_path), "--reports", str(tmp_path)])
    assert f"no stored runs table {tmp_path / lb.STORED}" in message and "make leaderboard" in message


@pytest.mark.parametrize(
    "text, says",
    [
        ("# c\nfamilies: [sgd]\noverrides: []\ncolour: red\n", "unknown key 'colour'"),
        ("# c\nfamilies: [rmsprop]\noverrides: []\n", "families=['rmsprop']"),
        ("# c\nfamilies: [sgd]\noverrides: [schedule=linear, oops]\n", "overrides must be a list"),
        ("# c\nfamilies: [sgd]\n", "missing key 'overrides'"),
        ("# c\nfamilies: [sgd\n", "not readable YAML"),
    ],
)
def test_a_malformed_entry_is_one_line(tmp_path, text, says):
    (tmp_path / "leaderboard" / "entry").mkdir(parents=True)
    (tmp_path / "leaderboard" / "entry" / "mine.yaml").write_text(text)
    with pytest.raises(SpecError, match="mine.yaml: ") as e:
        load_entries([tmp_path])
    assert says in str(e.value)


@pytest.mark.parametrize(
    "change, says",
    [
        (("seeds: 3", "seeds: 2"), "seeds=2: must be an integer >= 3"),
        (("tier: cpu", "tier: tpu"), "tier='tpu'"),
        (("rule: test", "rule: mine"), "rule='mine'"),
        (("  - steps=256", "  - seed=4"), "overrides fix 'seed=4'"),
        (("lrs: [0.125, 0.25,", "lrs: [0.25, 0.125,"), "lrs must be increasing"),
        (("target_test_loss: ", "target_test_los: "), "unknown key 'target_test_los'"),
    ],
)
def test_a_malformed_workload_is_one_line(tmp_path, change, says):
    text = (load_workloads()["fcn_sp_mse_sgd"].path).read_text()
    assert change[0] in text
    path = tmp_path / "w.yaml"
    path.write_text(text.replace(change[0], change[1]))
    with pytest.raises(SpecError, match="w.yaml: ") as e:
        load_workload(path)
    assert says in str(e.value)


def test_every_workload_and_entry_loads_and_each_cpu_workload_has_entries():
    workloads, entries = load_workloads(), load_entries()
    assert sum(w.tier == "cpu" for w in workloads.values()) >= 4
    for w in workloads.values():
        assert w.comment and w.seeds >= 3
        assert {"no_warmup", "linear_5pct"} <= {e.name for e in entries.values() if e.applies_to(w)}
