"""Another Hydra sweeper drives the app: the task returns its objective (best_test_acc), so Optuna can optimize it."""

import math

import pytest
import yaml

from tests.conftest import launch

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[optuna]'")

TINY = ["model.width=16", "model.depth=2", "steps=12", "eval_every=4", "batch_size=64", "device=cpu"]


@pytest.mark.slow
def test_optuna_runs_a_4_trial_study_on_the_demo_model(tmp_path):
    sweep = tmp_path / "study"
    proc = launch(
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.sampler.seed=0",
        "optimizer.lr=tag(log,interval(0.01,1))",
        *TINY,
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    results = [yaml.safe_load(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(results) == 4
    assert 0.01 <= best["best_params"]["optimizer.lr"] <= 1
    accs = [r["best_test_acc"] for r in results if r["status"] == "completed"]
    assert math.isclose(best["best_value"], max(accs)), "the objective is each run's best_test_acc"
