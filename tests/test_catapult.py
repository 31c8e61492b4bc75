"""The loss-catapult search for eta_init (docs/paper.md section 3): closed forms on quadratics, the default FCN,
and runs."""

import json
import math

import pandas as pd
import pytest
import torch

import bench
from bench.config import validate
from bench.data import build_dataset
from bench.losses import mse
from bench.models import build_model
from bench.optim.catapult import PersistentCatapult, Search, catapult_search, search_batch
from bench.optim.schedule import Schedule
from bench.runfolder import RESULT
from bench.runfolder.store import RunStore
from bench.seeding import generator
from bench.train import Trainer
from tests.conftest import compose_cfg


def quadratic(lam: float, x0=(1.0, -2.0, 0.5)):
    """L(x) = 0.5 lam |x|^2: one GD step multiplies L by (1 - eta lam)^2, so it rises exactly when eta > 2 / lam."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    return x, lambda: 0.5 * lam * (x**2).sum()


@pytest.mark.parametrize("lam", [0.3, 1.0, 7.0, 250.0])
@pytest.mark.parametrize("delta", [0.1, 0.01])
def test_gd_on_quadratic_finds_two_over_lambda(lam, delta):
    x, loss_of = quadratic(lam)
    opt = torch.optim.SGD([x], lr=0.0)
    found = catapult_search(opt, loss_of, lr_trgt=1e3, lr0=1e-4, delta=delta)
    assert found.outcome == "bracketed"
    assert found.lr_lower < 2 / lam <= found.lr_c  # the bracket holds the critical rate
    assert abs(found.lr_c - 2 / lam) <= delta * 2 / lam
    doublings = math.ceil(math.log2(2 / lam / 1e-4))
    assert found.forward_passes <= doublings + 1 + 12


def test_adam_step_from_the_initial_state():
    """Adam's first step is eta g / (|g| + eps) ~ eta sign(g): on 0.5 lam x^2 from x0 = 1 the loss rises at eta = 2."""
    x, loss_of = quadratic(40.0, x0=(1.0,))
    opt = torch.optim.Adam([x], lr=0.0)
    found = catapult_search(opt, loss_of, lr_trgt=100.0, lr0=1e-4, delta=0.01)
    assert found.outcome == "bracketed" and abs(found.lr_c - 2.0) <= 0.01 * 2.0
    assert opt.state[x] == {}  # the trials left the fresh state as it was


def test_search_leaves_parameters_state_grads_and_lr_as_found():
    x, loss_of = quadratic(2.0)
    opt = torch.optim.Adam([x], lr=0.123)
    loss_of().backward()
    opt.step()  # some state to keep
    before = {k: v.clone() for k, v in opt.state[x].items()}
    x_before, grad_before = x.detach().clone(), x.grad
    catapult_search(opt, loss_of, lr_trgt=10.0)
    assert torch.equal(x.detach(), x_before) and x.grad is grad_before
    assert all(torch.equal(before[k], v) for k, v in opt.state[x].items())
    assert opt.param_groups[0]["lr"] == 0.123


def test_edges_stable_target_rise_at_start_and_fallback():
    x, loss_of = quadratic(1.0)
    opt = torch.optim.SGD([x], lr=0.0)
    stable = catapult_search(opt, loss_of, lr_trgt=1.5, lr0=1e-2)  # eta_trgt < 2 / lam: reached at once
    assert (stable.outcome, stable.lr_c) == ("stable_at_target", 1.5)
    rises = catapult_search(opt, loss_of, lr_trgt=100.0, lr0=3.0)  # already unstable at eta0: eta_c = eta0
    assert (rises.outcome, rises.lr_c, rises.forward_passes) == ("rises_at_start", 3.0, 1)
    spent = catapult_search(opt, loss_of, lr_trgt=100.0, lr0=1e-6, max_forward_passes=5)
    assert (spent.outcome, spent.lr_c, spent.forward_passes) == ("fallback", 10.0, 5)


def test_default_fcn_needs_few_forward_passes():
    """FCN-4-512 (the default model) on an mnist5k batch of 128, SGD: about 20 forward passes at most."""
    cfg = validate(compose_cfg("device=cpu"))
    data = build_dataset(cfg.dataset, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    x, y = data.x_train[:128], data.y_train[:128]
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    found = catapult_search(opt, lambda: mse(model(x), y), lr_trgt=1e3, lr0=1e-4, delta=0.1)
    print(f"default FCN: eta_c = {found.lr_c:.4g}, {found.forward_passes} forward passes")
    assert found.outcome == "bracketed" and found.forward_passes <= 20


def test_catapult_run_records_and_ramp(tmp_path, tiny):
    """schedule=catapult: eta(s) = eta_c + eta_trgt s / T_wrm, capped; eta_c, T_reach, T_save in result.json."""
    args = (*tiny, "schedule=catapult", "schedule.warmup_steps=8", "optimizer.lr=50")
    result = bench.run(compose_cfg(*args), tmp_path)
    on_disk = json.loads((tmp_path / RESULT).read_text())
    eta_c, lr = on_disk["eta_c"], result["lr"]
    assert on_disk["catapult_outcome"] == "bracketed" and 0 < eta_c < lr
    assert on_disk["T_reach"] == pytest.approx(8 * (1 - eta_c / lr))
    assert on_disk["T_save"] == pytest.approx(8 * eta_c / lr - on_disk["catapult_forward_passes"] / 2)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    for step, rate in zip(metrics["step"], metrics["lr"]):
        assert rate == pytest.approx(min(eta_c + lr * step / 8, lr))


@pytest.mark.parametrize("augment", [[], ["dataset.flip=true"]])
def test_catapult_search_uses_its_own_batch(tmp_path, tiny, augment):
    """The search draws its batch (and its augmentation) from its own streams and restores what it touched: with
    warmup_steps = 1 (eta_trgt from step 1) a catapult run is the linear-schedule run, step for step."""
    a = bench.run(compose_cfg(*tiny, *augment, "schedule=catapult", "optimizer.lr=0.5"), tmp_path / "a")
    b = bench.run(compose_cfg(*tiny, *augment, "optimizer.lr=0.5"), tmp_path / "b")
    assert a["catapult_outcome"] == "bracketed" and a["eta_c"] < 0.5 and "eta_c" not in b
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "metrics.csv"), pd.read_csv(tmp_path / "b" / "metrics.csv")
    )


def test_search_batch_is_augmented_like_a_training_batch(tmp_path, tiny):
    """The search batch, and with it the persistent catapult's first reference loss: batch_size training examples
    from the own "catapult" stream, augmented as training batches are (here: each example as it is or mirrored, some
    mirrored); without augmentation the clean examples, as before augmentation was applied."""
    cfg = validate(compose_cfg(*tiny, "schedule=persistent_catapult", "optimizer.lr=50", "dataset.flip=true"))
    tr = Trainer(cfg, RunStore(tmp_path))  # theta0: the search restored the parameters it tried
    x, y = tr.data.x_train, tr.data.y_train
    idx = torch.randperm(len(x), generator=generator(cfg.seed, "catapult"))[:64]
    xb, yb = search_batch(cfg, tr.data)
    same, mirrored = ((xb == v).flatten(1).all(1) for v in (x[idx], x[idx].flip(-1)))
    assert torch.equal(yb, y[idx]) and (same | mirrored).all() and (mirrored & ~same).any()
    with torch.no_grad():
        assert tr.schedule.catapult.ref_loss == pytest.approx(tr.loss_fn(tr.model(xb), yb).item())
    cfg.dataset.flip = False
    assert torch.equal(search_batch(cfg, tr.data)[0], x[idx])


def persistent(lam: float, level: float, lr_trgt: float):
    x, loss_of = quadratic(lam)
    opt = torch.optim.SGD([x], lr=level)
    extras = {"catapult_forward_passes": 0}
    base = Schedule(lr=lr_trgt, total_steps=100, lr_init=lr_trgt)
    sched = PersistentCatapult(base, opt, Search(level, level / 2, 100.0, 0, "bracketed"), 0.1, 100, extras)
    return x, loss_of, opt, sched, extras


def test_persistent_catapult_re_estimates_below_the_reference():
    x, loss_of, opt, sched, extras = persistent(lam=10.0, level=0.05, lr_trgt=1.0)
    loss = loss_of()
    loss.backward()
    sched.observe(3, 200.0, loss_of)  # above the reference loss (100): nothing happens
    assert sched(3) == 0.05 and extras["catapult_searches"] == 1
    sched.observe(4, loss.item(), loss_of)  # below it: eta_c re-estimated here, from the current rate
    assert abs(sched(4) - 0.2) <= 0.1 * 0.2 and sched(4) >= 0.2
    assert opt.param_groups[0]["lr"] == sched(4) and extras["catapult_searches"] == 2
    assert sched.ref_loss == loss.item() and extras["T_reach"] is None


def test_persistent_catapult_stops_at_the_target():
    x, loss_of, opt, sched, extras = persistent(lam=1.0, level=0.05, lr_trgt=1.0)  # 2 / lam > eta_trgt
    loss = loss_of()
    loss.backward()
    sched.observe(5, loss.item(), loss_of)
    assert sched(5) == 1.0 and sched(50) == 1.0 and extras["T_reach"] == 5
    sched.observe(6, 0.0, loss_of)  # done: no more searches
    assert extras["catapult_searches"] == 2


def test_persistent_catapult_run(tmp_path, tiny):
    """eta_trgt = 50 diverges at once from a plain catapult warmup; the persistent one raises eta in a few searches
    and never past what the loss allows."""
    result = bench.run(compose_cfg(*tiny, "schedule=persistent_catapult", "optimizer.lr=50"), tmp_path)
    assert result["status"] == "completed" and result["catapult_searches"] >= 2 and result["T_reach"] is None
    rates = pd.read_csv(tmp_path / "metrics.csv")["lr"]
    assert (rates <= result["lr"]).all() and (rates >= result["eta_c"] * (1 - 1e-12)).all()


def test_trainer_schedule_is_the_catapult_ramp(tmp_path, tiny):
    tr = Trainer(
        validate(compose_cfg(*tiny, "schedule=catapult", "schedule.warmup_steps=4", "optimizer.lr=50")),
        RunStore(tmp_path),
    )
    eta_c = tr.extras["eta_c"]
    assert [tr.schedule(s) for s in (1, 2, 4, 5)] == pytest.approx([min(eta_c + 50 * s / 4, 50) for s in (1, 2, 4, 5)])
