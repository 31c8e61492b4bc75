"""The catapult records R(g0) = g0'H g0 / |g0|^2, 2 / R(g0) and lambda0 (issue 14): why the one-step loss test finds
eta_c near 2 / R(g0) rather than 2 / lambda0."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import bench
from bench.optim.catapult import catapult_search, rayleigh_g0
from bench.runfolder import RESULT, check_result
from tests.conftest import compose_cfg

F64 = torch.float64


def half_mse(out, t):
    return 0.5 * (out - t).pow(2).mean()


@pytest.fixture
def regression():
    """Linear least squares in float64: H = X'X / n whatever w, g0 = X'(X w0 - y) / n = H (w0 - w*). w0 - w* =
    sum_i u_i / lambda_i puts g0 evenly on every eigenvector u_i, so R(g0) is the mean eigenvalue, well below
    lambda_max (features on very different scales)."""
    g = torch.Generator().manual_seed(0)
    n, d = 64, 12
    x = torch.randn(n, d, generator=g, dtype=F64) * torch.logspace(-1, 0.5, d, dtype=F64)
    y = torch.randn(n, 1, generator=g, dtype=F64)
    h = x.T @ x / n
    lam, u = torch.linalg.eigh(h)
    w_star = torch.linalg.lstsq(x, y).solution.reshape(-1)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(w_star + u @ (1 / lam))
    g0 = (x.T @ (x @ model.weight.detach().T - y) / n).reshape(-1)
    return model, x, y, h, g0


def test_rayleigh_quotient_of_the_gradient_is_the_closed_form(regression):
    model, x, y, h, g0 = regression
    closed = (g0 @ h @ g0 / (g0 @ g0)).item()
    assert rayleigh_g0(model, half_mse, x, y) == pytest.approx(closed, rel=1e-12)
    assert closed == pytest.approx(torch.linalg.eigvalsh(h).mean().item(), rel=1e-8)  # g0 even on every u_i
    assert closed < 0.5 * torch.linalg.eigvalsh(h)[-1].item()  # the case where 2/R and 2/lambda differ


def test_one_step_loss_test_finds_two_over_rayleigh(regression):
    """On a quadratic, L(theta0 - eta g0) - L0 = -eta |g0|^2 + eta^2 g0'H g0 / 2 exactly: the loss rises past L0 at
    eta = 2 / R(g0), which the search brackets, not at 2 / lambda_max."""
    model, x, y, h, _ = regression
    eta_r = 2 / rayleigh_g0(model, half_mse, x, y)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    found = catapult_search(opt, lambda: half_mse(model(x), y), lr_trgt=1e3, lr0=1e-4, delta=1e-6)
    assert found.outcome == "bracketed"
    assert found.lr_lower < eta_r <= found.lr_c
    assert found.lr_c == pytest.approx(eta_r, rel=1e-4)
    assert found.lr_c > 2 * 2 / torch.linalg.eigvalsh(h)[-1].item()


@pytest.mark.parametrize("unit", ["absolute", "inverse_sharpness"])
def test_catapult_run_records_rayleigh_and_lambda0(tmp_path, tiny, unit):
    args = (*tiny, "schedule=catapult", "schedule.warmup_steps=8", "optimizer.lr=50", f"optimizer.lr_unit={unit}")
    result = bench.run(compose_cfg(*args, "optimizer.lambda0_batches=1"), tmp_path)
    on_disk = json.loads((tmp_path / RESULT).read_text())
    r, lam = on_disk["rayleigh_g0"], on_disk["lambda0"]
    assert on_disk["eta_rayleigh"] == pytest.approx(2 / r) and "eta_rayleigh_null" not in on_disk
    assert math.isfinite(r) and r > 0 and lam > 0
    if unit == "absolute":  # lambda0 is the search batch's sharpness: the Rayleigh quotient cannot exceed it
        assert r <= lam * (1 + 1e-3)
    else:  # the run's own lambda0, which set eta_trgt
        assert result["lr"] == pytest.approx(50 / lam)


def test_adam_records_eta_rayleigh_as_null_with_the_reason(tmp_path, tiny):
    """2 / R(g0) estimates where a step along -g0 raises the loss; the Adam family's step P^-1 m is not along g0, so
    its search records R(g0) but no eta_rayleigh, and says why."""
    args = (*tiny, "optimizer=adam", "schedule=catapult", "schedule.warmup_steps=8", "optimizer.lr=0.01")
    bench.run(compose_cfg(*args), tmp_path)
    on_disk = json.loads((tmp_path / RESULT).read_text())
    assert on_disk["eta_rayleigh"] is None and "not along g0" in on_disk["eta_rayleigh_null"]
    assert on_disk["rayleigh_g0"] > 0 and on_disk["eta_c"] > 0 and check_result(on_disk) == []
