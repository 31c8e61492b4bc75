"""Sharpness: the project's eigen-solver against plain power iteration (PyHessian's algorithm), both run to the
same relative accuracy (1e-4 of a long reference run) on the default FCN; Hessian-vector products and wall time.
Also the cost of warm-started measurements at consecutive training steps. Target: at least 3x fewer products."""

from __future__ import annotations

import time

import torch

from bench.data import build_dataset
from bench.losses import mse
from bench.models import build_model
from bench.sharpness import hvp_operator, power_iteration, top_eigenvalue
from benchmarks.common import compose_cfg, median

ACCURACY = 1e-4
BATCH = 512


def _solve_to_accuracy(solver, op, dim, ref, seed) -> tuple[int, float, float]:
    """Tighten the solver's own tolerance until its answer is within ACCURACY of the reference."""
    for tol in (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 1e-7, 1e-8):
        v0 = torch.randn(dim, generator=torch.Generator().manual_seed(seed))
        start = time.perf_counter()
        eig = solver(op, dim, v0=v0, tol=tol, max_iter=5000)
        seconds = time.perf_counter() - start
        if abs(eig.value - ref) <= ACCURACY * abs(ref):
            return eig.n_hvp, seconds, tol
    raise RuntimeError(f"{solver.__name__} never reached {ACCURACY} relative accuracy")


def run(repeats: int = 3) -> dict:
    cfg = compose_cfg("device=cpu")
    data = build_dataset(cfg.dataset, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    x, y = data.x_train[:BATCH], data.y_train[:BATCH]
    op, flat = hvp_operator(model, mse, x, y)
    dim = flat.numel()
    ref = top_eigenvalue(op, dim, tol=1e-9, max_iter=5000).value
    rows = {"power": [], "solver": []}
    for seed in range(repeats):
        rows["power"].append(_solve_to_accuracy(power_iteration, op, dim, ref, seed))
        rows["solver"].append(_solve_to_accuracy(top_eigenvalue, op, dim, ref, seed))
    p_hvp, s_hvp = median([r[0] for r in rows["power"]]), median([r[0] for r in rows["solver"]])
    p_sec, s_sec = median([r[1] for r in rows["power"]]), median([r[1] for r in rows["solver"]])
    cold, warm = consecutive_steps(model, x, y)
    return {
        "name": "sharpness: Hessian-vector products, power iteration / solver (to 1e-4 relative)",
        "ratio": p_hvp / s_hvp,
        "target": 3.0,
        "better": "higher",
        "absolute": f"power {p_hvp:.0f} HVPs {p_sec:.2f} s, solver {s_hvp:.0f} HVPs {s_sec:.2f} s "
        f"(lambda = {ref:.4f}, FCN-4-512, batch {BATCH}); consecutive steps: cold {cold:.1f}, "
        f"warm-started {warm:.1f} HVPs per measurement",
        "power_hvp": p_hvp,
        "solver_hvp": s_hvp,
        "power_s": p_sec,
        "solver_s": s_sec,
        "cold_hvp_per_step": cold,
        "warm_hvp_per_step": warm,
    }


def consecutive_steps(model, x, y, steps: int = 8, lr: float = 0.01) -> tuple[float, float]:
    """Mean HVPs per measurement over consecutive SGD steps, cold (random start) vs warm (last eigenvector)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    cold, warm, v = [], [], None
    for _ in range(steps):
        op, flat = hvp_operator(model, mse, x, y)
        cold.append(top_eigenvalue(op, flat.numel(), tol=ACCURACY).n_hvp)
        eig = top_eigenvalue(op, flat.numel(), v0=v, tol=ACCURACY)
        warm.append(eig.n_hvp)
        v = eig.vector
        loss = mse(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sum(cold[1:]) / (steps - 1), sum(warm[1:]) / (steps - 1)
