"""Sharpness measured during training: the right rows, the right values, and training left exactly as it was."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest

import bench
from bench.config import validate
from bench.errors import ConfigError
from bench.losses import LOSSES
from bench.measure import Measurer, preconditioned, threshold
from bench.runfolder.store import RunStore
from bench.sharpness import pre_sharpness, sharpness
from bench.train import Trainer
from tests.conftest import compose_cfg


def test_thresholds():
    assert threshold(SimpleNamespace(momentum=0.0), 0.5) == 4.0  # 2 / eta
    assert threshold(SimpleNamespace(momentum=0.9), 0.5) == pytest.approx(3.8 / 0.5)  # (2 + 2 beta) / eta
    assert threshold(SimpleNamespace(b1=0.9, momentum=0.0), 0.01) == pytest.approx(38 / 0.01)  # Adam, b1 = 0.9
    assert math.isnan(threshold(SimpleNamespace(), 0.0))


def test_preconditioner_from_the_optimizer_config():
    """Every Adam option (RAdam included) is measured with Adam's preconditioner; SGD is not."""
    from bench.config import GROUPS

    optimizers = GROUPS["optimizer"]
    assert {name for name, node in optimizers.items() if preconditioned(node())} == {
        "adam",
        "gi_adam",
        "ri_adam",
        "radam",
    }


def test_measuring_does_not_change_training(tmp_path, tiny):
    plain = bench.run(compose_cfg(*tiny), tmp_path / "plain")
    measured = bench.run(compose_cfg(*tiny, "measure.every=1", "measure.until=6"), tmp_path / "measured")
    a = pd.read_csv(tmp_path / "plain" / "metrics.csv").set_index("step")
    b = pd.read_csv(tmp_path / "measured" / "metrics.csv").set_index("step")
    assert plain["final_train_loss"] == measured["final_train_loss"]
    pd.testing.assert_frame_equal(a, b.loc[a.index, a.columns])  # identical losses, bit for bit
    assert b["batch_loss"].notna().sum() == 6
    sharp = b.dropna(subset=["sharpness"])
    assert list(sharp.index) == [1, 2, 3, 4, 5, 6]  # every step through `until`, none after
    assert (sharp["sharpness"] > 0).all()
    assert sharp["threshold"].tolist() == pytest.approx((2 / sharp["lr"]).tolist())
    assert "pre_sharpness" not in b.columns  # SGD has no preconditioner


def test_first_measurement_is_the_sharpness_at_init_on_the_first_batch(tmp_path, tiny):
    cfg = validate(compose_cfg(*tiny, "measure.every=5", "measure.tol=1e-6"))
    trainer = Trainer(cfg, RunStore(tmp_path))
    idx = trainer.sampler.next()  # peek at the first batch with a twin sampler
    trainer2 = Trainer(cfg, RunStore(tmp_path / "b"))
    x, y = trainer2.data.x_train[idx], trainer2.data.y_train[idx]
    expected = sharpness(trainer2.model, trainer2.loss_fn, x, y, tol=1e-6).value
    trainer2.train()
    row = trainer2.rows[1]
    assert row["sharpness"] == pytest.approx(expected, rel=1e-4)
    assert sorted(s for s, r in trainer2.rows.items() if "sharpness" in r) == [1, 6, 11]


def test_fixed_batch_and_adam_pre_sharpness(tmp_path, tiny):
    """With Adam the rows gain pre_sharpness, measured on the fixed batch with the state before the step."""
    args = ("optimizer=adam", "optimizer.lr=0.1", "measure.every=3", "measure.batch=fixed", "measure.float64=true")
    cfg = validate(compose_cfg(*tiny, *args))
    trainer = Trainer(cfg, RunStore(tmp_path))
    assert trainer.measurer.adam  # the preconditioner comes from the optimizer's config
    x, y = trainer.measurer.fixed
    assert len(x) == cfg.batch_size
    for s in range(1, 4):
        trainer.train_step(s)
    # step 4 by hand: the expected value from the state and gradient just before the optimizer step
    trainer.optimizer.zero_grad()
    trainer.loss_fn(trainer.model(x), y).backward()
    expected = pre_sharpness(trainer.model, trainer.loss_fn, x, y, trainer.optimizer, tol=1e-8, float64=True).value
    trainer.train_step(4)
    assert trainer.rows[4]["pre_sharpness"] == pytest.approx(expected, rel=1e-3)
    assert trainer.rows[4]["pre_sharpness"] > trainer.rows[4]["sharpness"]


@pytest.mark.parametrize(
    "arg,key",
    [("measure.every=-1", "measure.every"), ("measure.batch=some", "measure.batch"), ("measure.tol=0", "measure.tol")],
)
def test_bad_measure_values(arg, key):
    with pytest.raises(ConfigError, match=key):
        validate(compose_cfg(arg))


def test_measurer_takes_explicit_inputs_without_a_trainer():
    """Model, loss, optimizer, the threshold at step s and where the row goes: no Trainer needed."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    loss_fn = LOSSES["xent"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    rows = {}
    cfg = SimpleNamespace(every=1, until=0, tol=1e-8, max_iter=500, float64=True)
    m = Measurer(cfg, model, loss_fn, optimizer, lambda s: 2 / 0.1, False, lambda s, **r: rows.update(r), seed=0)
    loss = loss_fn(model(x), y)
    loss.backward()
    m.step(1, x, y, loss)
    expected = sharpness(model, loss_fn, x, y, tol=1e-8, max_iter=500, float64=True).value
    assert rows["sharpness"] == pytest.approx(expected, rel=1e-5)
    assert rows["threshold"] == 20.0 and "pre_sharpness" not in rows
