"""Sweep folders -> tables: skipped items counted in one warning, parquet cache rebuilt when files change."""

import json
import warnings

import pytest

import analysis.aggregate as aggregate
from analysis import load_runs, load_steps
from tests.sweeps import make_sweep


@pytest.fixture(scope="module")
def damaged_sweep(tmp_path_factory):
    """Five real runs; then one truncated result.json, one missing metrics.csv and one unrelated file."""
    root = tmp_path_factory.mktemp("sweep")
    grid = [[f"optimizer.lr={lr}", f"seed={s}"] for lr in (0.1, 0.25) for s in (0, 1)] + [["optimizer.lr=1000"]]
    results = make_sweep(root, grid)
    (root / "multirun.yaml").write_text("hydra: {}\n")  # Hydra's own file: not a skipped item
    run = root / "optimizer.lr=0.1,seed=0"  # what Hydra, wandb and checkpoints add to a run folder: not items either
    for extra in (".hydra/config.yaml", "wandb/offline-run-x/files/config.yaml", "checkpoints/last.pt", "launch.log"):
        (run / extra).parent.mkdir(parents=True, exist_ok=True)
        (run / extra).write_text("x: 1\n")
    truncated = root / "optimizer.lr=0.1,seed=1" / "result.json"
    truncated.write_text(truncated.read_text()[:40])
    (root / "optimizer.lr=0.25,seed=1" / "metrics.csv").unlink()
    (root / "notes.txt").write_text("an unrelated file\n")
    good = {k: v for k, v in results.items() if k not in ("optimizer.lr=0.1,seed=1", "optimizer.lr=0.25,seed=1")}
    return root, good


def test_damaged_sweep_aggregates_with_one_warning_counting_three(damaged_sweep):
    root, good = damaged_sweep
    with pytest.warns(UserWarning, match=r"^skipped 3 unreadable item\(s\)") as caught:
        runs = load_runs(root, cache=False)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "truncated" in text and "without metrics.csv" in text and "notes.txt: unrelated file" in text
    assert len(runs) == len(good) == 3
    by_dir = runs.set_index(runs["run_dir"].map(lambda d: d.rsplit("/", 1)[-1]))
    for name, result in good.items():
        row = by_dir.loc[name]
        assert row["status"] == result["status"]
        assert row["best_test_acc"] == pytest.approx(result["best_test_acc"], nan_ok=True)
        assert row["optimizer.lr"] == float(name.split(",")[0].split("=")[1])
        assert row["model.width"] == 32 and row["sweep"] == str(root)
    assert by_dir.loc["optimizer.lr=1000", "status"] == "diverged"


def test_per_step_table(damaged_sweep):
    root, good = damaged_sweep
    with pytest.warns(UserWarning, match=r"^skipped 3 unreadable"):
        steps = load_steps(root, keys=["optimizer.lr", "seed", "status"], cache=False)
    completed = [k for k, v in good.items() if v["status"] == "completed"]
    assert len(steps) == 3 * len(completed) + 1  # evaluations at 4, 8, 12; the diverged run's last row
    one = steps[steps["run_dir"].str.endswith("/optimizer.lr=0.1,seed=0")]
    assert list(one["step"]) == [4, 8, 12]
    assert one["test_acc"].max() == pytest.approx(good["optimizer.lr=0.1,seed=0"]["best_test_acc"])
    assert set(one["optimizer.lr"]) == {0.1} and set(one["status"]) == {"completed"}


def test_cache_is_used_then_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    make_sweep(tmp_path, [["optimizer.lr=0.1"], ["optimizer.lr=0.2"]])
    first = load_runs(tmp_path)
    assert (tmp_path / "runs.parquet").exists()
    calls = []
    original = aggregate.read_run
    monkeypatch.setattr(aggregate, "read_run", lambda d: calls.append(d) or original(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_runs(tmp_path)
    assert calls == [] and again.equals(first)  # read from the cache, no warning
    path = tmp_path / "optimizer.lr=0.2" / "result.json"
    result = json.loads(path.read_text())
    result["best_test_acc"] = 0.123
    path.write_text(json.dumps(result))
    changed = load_runs(tmp_path)
    assert len(calls) == 2
    assert changed.set_index("optimizer.lr").loc[0.2, "best_test_acc"] == 0.123
    path.write_text("{")  # a cached table still reports its skipped items
    with pytest.warns(UserWarning, match="skipped 1"):
        load_runs(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(load_runs(tmp_path)) == 1


def test_several_sweeps_and_a_missing_one(tmp_path):
    make_sweep(tmp_path / "a", [["optimizer.lr=0.1"]])
    make_sweep(tmp_path / "b", [["optimizer.lr=0.2"], ["optimizer.lr=0.3"]])
    runs = load_runs(tmp_path / "a", tmp_path / "b")
    assert sorted(runs["optimizer.lr"]) == [0.1, 0.2, 0.3]
    assert sorted(set(runs["sweep"])) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert len(load_runs(tmp_path)) == 3  # a folder of sweeps
    with pytest.raises(FileNotFoundError, match="no such sweep folder"):
        load_runs(tmp_path / "nope")
