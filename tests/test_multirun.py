"""A real Hydra multirun (in this process, as launch.py runs it: tests/conftest.py `multirun`), gathered
into a DataFrame, and its phase diagram."""

import pytest
from hydra.core.utils import JobStatus

from analysis import eta_max, load_runs, phase_grid
from analysis.__main__ import main as analysis_main
from tests.conftest import multirun


@pytest.mark.slow
def test_multirun_then_dataframe_and_phase(tmp_path):
    sweep = tmp_path / "sweep"
    returns = multirun(
        "optimizer.lr=0.25,64",
        "schedule.warmup_steps=1,8",
        "model.width=64",
        "model.depth=3",
        "steps=16",
        "eval_every=8",
        "device=cpu",
        f"hydra.sweep.dir={sweep}",
    )
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 4
    runs = load_runs(sweep)
    assert len(runs) == 4
    assert sorted(zip(runs["optimizer.lr"], runs["schedule.warmup_steps"])) == [
        (0.25, 1),
        (0.25, 8),
        (64.0, 1),
        (64.0, 8),
    ]
    assert set(runs.loc[runs["optimizer.lr"] == 0.25, "status"]) == {"completed"}
    assert set(runs.loc[(runs["optimizer.lr"] == 64) & (runs["schedule.warmup_steps"] == 1), "status"]) == {"diverged"}
    assert (runs["model.width"] == 64).all() and (runs["num_params"] > 0).all()
    grid = phase_grid(runs)
    assert len(grid) == 4 and grid["runs"].sum() == 4
    bound = eta_max(runs).set_index("schedule.warmup_steps")["eta_max"]
    assert bound[1] == 0.25
    analysis_main(["phase", str(sweep)])
    assert (sweep / "phase_best_test_acc.png").stat().st_size > 1000
    assert (sweep / "phase_best_test_acc.csv").exists()
