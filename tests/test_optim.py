"""The Adam family against closed forms (float64) and torch.optim.Adam; their config checks."""

import copy

import pytest
import torch
from torch import nn

from bench.config import validate
from bench.data import EpochSampler
from bench.errors import ConfigError
from bench.optim import build_optimizer, set_lr
from bench.optim.adam_init import second_moment, set_second_moment
from bench.runfolder.store import RunStore
from bench.seeding import generator
from bench.sweeps.preflight import check_command as preflight
from bench.train import Trainer
from tests.conftest import compose_cfg, launch
from tests.helpers import tiny_run

B1, B2, EPS = 0.9, 0.999, 1e-8


def tiny_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    batches = [(torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)) for _ in range(2)]
    return model, batches


def grads_at(model, x, y):
    return torch.autograd.grad(0.5 * (model(x) - y).pow(2).mean(), list(model.parameters()))


def trainer(tmp_path, *overrides):
    tiny = tiny_run("steps=6", "eval_every=3")
    return Trainer(validate(compose_cfg(*tiny, *overrides)), RunStore(tmp_path))


def test_gi_adam_first_update_is_the_closed_form():
    """theta1 = theta0 - eta m1_hat / (sqrt(v1_hat) + eps), m1 = (1 - b1) g1, v1 = b2 g0^2 + (1 - b2) g1^2."""
    model, [(x0, y0), (x1, y1)] = tiny_problem()
    eta = 0.01
    opt = torch.optim.Adam(model.parameters(), lr=eta, betas=(B1, B2), eps=EPS)
    g0 = grads_at(model, x0, y0)
    set_second_moment(opt, second_moment(list(g0), "gi_adam"))
    theta0 = [p.detach().clone() for p in model.parameters()]
    g1 = grads_at(model, x1, y1)
    for p, g in zip(model.parameters(), g1):
        p.grad = g.clone()
    opt.step()
    for p, t0, a, b in zip(model.parameters(), theta0, g0, g1):
        m_hat = (1 - B1) * b / (1 - B1)
        v_hat = (B2 * a**2 + (1 - B2) * b**2) / (1 - B2)
        torch.testing.assert_close(p.detach(), t0 - eta * m_hat / (v_hat.sqrt() + EPS), rtol=1e-12, atol=1e-15)
    # and it differs from plain Adam's first step, -eta g1 / (|g1| + eps)
    plain = [t0 - eta * b / (b.abs() + EPS) for t0, b in zip(theta0, g1)]
    assert not all(torch.allclose(p, q) for p, q in zip(model.parameters(), plain))


def test_ri_adam_v0_has_the_norm_of_g0():
    model, [(x0, y0), _] = tiny_problem()
    g0 = grads_at(model, x0, y0)
    v0 = second_moment(list(g0), "ri_adam", generator(0, "ri_adam"))
    norm = torch.cat([v.sqrt().reshape(-1) for v in v0]).norm()
    assert norm.item() == pytest.approx(torch.cat([g.reshape(-1) for g in g0]).norm().item(), rel=1e-12)
    assert [v.shape for v in v0] == [g.shape for g in g0]
    assert not all(torch.allclose(v, g**2) for v, g in zip(v0, g0))  # random directions, not g0^2
    again = second_moment(list(g0), "ri_adam", generator(0, "ri_adam"))
    assert all(torch.equal(a, b) for a, b in zip(v0, again))


def test_plain_adam_matches_closed_form_two_steps():
    model, batches = tiny_problem()
    cfg = validate(compose_cfg("optimizer=adam")).optimizer
    opt = build_optimizer(cfg, model.parameters(), lr=0.01)
    assert type(opt) is torch.optim.Adam
    m = [torch.zeros_like(p) for p in model.parameters()]
    v = [torch.zeros_like(p) for p in model.parameters()]
    theta = [p.detach().clone() for p in model.parameters()]
    for t, (x, y) in enumerate(batches, start=1):
        g = grads_at(model, x, y)
        for p, gi in zip(model.parameters(), g):
            p.grad = gi.clone()
        opt.step()
        for i, gi in enumerate(g):
            m[i] = B1 * m[i] + (1 - B1) * gi
            v[i] = B2 * v[i] + (1 - B2) * gi**2
            theta[i] = theta[i] - 0.01 * (m[i] / (1 - B1**t)) / ((v[i] / (1 - B2**t)).sqrt() + EPS)
        for p, th in zip(model.parameters(), theta):
            torch.testing.assert_close(p.detach(), th, rtol=1e-12, atol=1e-15)


def test_run_with_adam_matches_torch_adam_step_for_step(tmp_path):
    """The harness's adam run equals a hand-written loop with torch.optim.Adam on the same batches and rates."""
    tr = trainer(tmp_path, "optimizer=adam", "optimizer.lr=0.003", "schedule.warmup_steps=4")
    model = copy.deepcopy(tr.model)
    opt = torch.optim.Adam(model.parameters(), lr=0.003, betas=(B1, B2), eps=EPS)
    sampler = EpochSampler(len(tr.data.x_train), 64, generator(0, "data"), tr.device)
    for s in range(1, 7):
        tr.train_step(s)
        idx = sampler.next()
        set_lr(opt, min(0.003 * s / 4, 0.003))
        opt.zero_grad()
        tr.loss_fn(model(tr.data.x_train[idx]), tr.data.y_train[idx]).backward()
        opt.step()
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), tr.model.parameters())), s


def test_gi_adam_run_spends_the_first_batch_on_v0(tmp_path):
    tr = trainer(tmp_path, "optimizer=gi_adam")
    sampler = EpochSampler(len(tr.data.x_train), 64, generator(0, "data"), tr.device)
    first = sampler.next()
    params = list(tr.model.parameters())
    g0 = torch.autograd.grad(tr.loss_fn(tr.model(tr.data.x_train[first]), tr.data.y_train[first]), params)
    for p, g in zip(params, g0):
        state = tr.optimizer.state[p]
        assert state["step"].item() == 0 and not state["exp_avg"].any()
        torch.testing.assert_close(state["exp_avg_sq"], g**2)
    assert torch.equal(tr.sampler.next(), sampler.next())  # training starts on the second batch
    assert tr.extras["g0_norm"] == pytest.approx(torch.cat([g.reshape(-1) for g in g0]).norm().item(), rel=1e-5)


def test_radam_and_hyperparameters():
    model, _ = tiny_problem()
    cfg = validate(compose_cfg("optimizer=radam", "optimizer.b1=0.8", "optimizer.eps=1e-6")).optimizer
    opt = build_optimizer(cfg, model.parameters(), lr=0.5)
    assert type(opt) is torch.optim.RAdam
    assert opt.param_groups[0]["betas"] == (0.8, 0.999) and opt.param_groups[0]["eps"] == 1e-6


@pytest.mark.parametrize(
    "argv,key",
    [
        (["optimizer=adam", "optimizer.b1=2"], "optimizer.b1=2.0"),
        (["optimizer=gi_adam", "optimizer.b2=-0.1"], "optimizer.b2=-0.1"),
        (["optimizer=radam", "optimizer.eps=0"], "optimizer.eps=0.0"),
        (["optimizer=adamw"], "optimizer=adamw"),
        (["optimizer.b1=0.9"], "optimizer.b1"),  # sgd has no b1
        (["schedule=catapult", "schedule.lr_init=0.1"], "schedule.lr_init"),
        (["schedule=persistent_catapult", "schedule.delta=-1"], "schedule.delta=-1.0"),
        (["schedule=cosine", "schedule.search_lr=0.1"], "schedule.search_lr"),
        (["-m", "optimizer=sgd,adam", "schedule=linear,warm"], "schedule=warm"),
        (["experiment=cpu/fig4_transformer_adam", "optimizer=sgd"], "Key 'spend_first_batch' not in 'SGDConfig'"),
    ],
)
def test_bad_optimizer_or_schedule_is_one_line(argv, key):
    with pytest.raises(ConfigError, match=key) as err:
        preflight(argv)
    assert "\n" not in str(err.value)


def test_bad_value_stops_the_command(tmp_path):
    proc = launch("optimizer=adam", "optimizer.b2=1.5", f"hydra.run.dir={tmp_path}/run")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "optimizer.b2=1.5" in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()
