"""`python launch.py -m optimizer=sgd,adam,gi_adam schedule=linear,cosine,catapult steps=30`: all nine complete
(the sweep in this process, as launch.py runs it: tests/conftest.py `multirun`)."""

import json

import pandas as pd
import pytest
from hydra.core.utils import JobStatus

from tests.conftest import multirun


@pytest.mark.slow
def test_nine_optimizer_schedule_combinations(tmp_path):
    sweep = tmp_path / "sweep"
    returns = multirun(
        "optimizer=sgd,adam,gi_adam",
        "schedule=linear,cosine,catapult",
        "steps=30",
        "schedule.warmup_steps=8",
        "model.width=32",
        "model.depth=2",
        "batch_size=64",
        "eval_every=10",
        "device=cpu",
        f"hydra.sweep.dir={sweep}",
    )
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 9
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}
    assert len(results) == 9
    for name, result in results.items():
        assert result["status"] == "completed", name
        rates = pd.read_csv(sweep / name / "metrics.csv").set_index("step")["lr"]
        if "schedule=cosine" in name:
            assert rates[30] == pytest.approx(result["lr"] / 10)  # decayed to eta_trgt / 10 at T
        if "schedule=catapult" in name:
            assert {"eta_c", "T_reach", "T_save", "catapult_forward_passes"} <= set(result)
            assert rates[10] == pytest.approx(min(result["eta_c"] + result["lr"] * 10 / 8, result["lr"]))
        assert ("g0_norm" in result) == ("optimizer=gi_adam" in name)
