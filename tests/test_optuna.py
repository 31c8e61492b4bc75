"""Another Hydra sweeper drives the app: the task returns its objective (best_test_acc), so Optuna can optimize it.
A diverged or failed trial returns the objective's penalty (bench.config.OBJECTIVES), the study goes on, and it ends
with its trials counted. The Optuna sweeper is in the dev extra; without it its test is skipped with the reason."""

import importlib.util
import logging
import math

import pytest
import yaml
from omegaconf import OmegaConf

import bench
from bench.config import OBJECTIVES
from bench.errors import ConfigError
from bench.sweeps.preflight import OPTIONAL_PLUGINS, check_command
from bench.train import Trainer
from tests.conftest import multirun

HAS_OPTUNA = importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
needs_optuna = pytest.mark.skipif(not HAS_OPTUNA, reason="Hydra's Optuna sweeper: pip install -e '.[optuna]'")


@needs_optuna
def test_optuna_study_goes_on_past_diverged_and_failed_trials(tmp_path, tiny, monkeypatch):
    """eta_trgt in [0.1, 300] without warmup: the large rates diverge; one trial's run crashes. All 6 trials run."""
    step = Trainer.train_step

    def crash_below_half(self, s):
        if self.cfg.optimizer.lr < 0.5:
            raise RuntimeError("boom: a crash in training")
        return step(self, s)

    monkeypatch.setattr(Trainer, "train_step", crash_below_half)
    sweep = tmp_path / "study"
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("bench.study").addHandler(handler)  # the job's logging setup replaces the root's handlers
    try:
        multirun(
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.direction=maximize",
            "hydra.sweeper.sampler.seed=1",
            "optimizer.lr=tag(log,interval(0.1,300))",
            *tiny,
            f"hydra.sweep.dir={sweep}",
        )
    finally:
        logging.getLogger("bench.study").removeHandler(handler)
    results = [yaml.safe_load(p.read_text()) for p in sweep.glob("*/result.json")]
    statuses = [r["status"] for r in results]
    assert len(results) == 6, "the study ran every trial"
    assert {"completed", "diverged", "failed"} <= set(statuses), statuses
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    accs = [r["best_test_acc"] for r in results if r["status"] == "completed"]
    assert math.isclose(best["best_value"], max(accs)), "the objective is each completed run's best_test_acc"
    assert 0.1 <= best["best_params"]["optimizer.lr"] <= 300
    n = {s: statuses.count(s) for s in ("completed", "diverged", "failed")}
    line = f"study: 6 trials in {sweep}: {n['completed']} completed, {n['diverged']} diverged, {n['failed']} failed"
    assert [x for x in lines if x.startswith(line)], lines


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_a_run_that_did_not_complete_returns_the_objectives_penalty(objective):
    cfg = OmegaConf.create({"objective": objective})
    worst = 0.0 if objective.endswith("_acc") else math.inf
    assert OBJECTIVES[objective] == worst
    for status in ("diverged", "failed", "running elsewhere"):
        assert bench.objective(cfg, {"status": status, objective: 0.5}) == worst
    assert bench.objective(cfg, {"status": "completed", objective: 0.5}) == 0.5
    assert bench.objective(cfg, {"status": "completed", objective: math.nan}) == worst, "never NaN to a sweeper"


def test_a_missing_optional_sweeper_names_its_install_command():
    """nevergrad is not installed here; optuna, where it is not, says the same with its extra."""
    with pytest.raises(ConfigError, match=r"^hydra/sweeper=nevergrad: not installed; .*pip install hydra-nevergrad"):
        check_command(["-m", "hydra/sweeper=nevergrad", "steps=2"])
    assert OPTIONAL_PLUGINS["hydra/sweeper/optuna"].startswith("pip install -c constraints.txt -e '.[optuna]'")


@needs_optuna
@pytest.mark.parametrize(
    "overrides,line",
    [
        (
            ["sweep=demo", "hydra.sweeper.direction=maximize"],
            "error: a study of OptunaSweeper changes the grid of the preset 'demo', whose results are in "
            "outputs/sweeps/demo: give the trial a folder of its own with name=NAME (outputs/sweeps/NAME) or "
            "hydra.sweep.dir=DIR",
        ),
        (
            ["optimizer.lr=tag(log,interval(1,2))"],  # Optuna's default direction: minimize
            "error: hydra.sweeper.direction=minimize: objective=best_test_acc is maximized "
            "(hydra.sweeper.direction=maximize)",
        ),
    ],
)
def test_a_study_that_would_mislead_is_refused_before_any_trial(tmp_path, monkeypatch, overrides, line):
    """A study over a preset would land among its results; one that minimizes an accuracy would find the penalty of
    a diverged run best."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        multirun("hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", *overrides)
    assert str(e.value) == line
    assert not (tmp_path / "outputs").exists()
