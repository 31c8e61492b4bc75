"""Sharpness lambda^H: the top eigenvalue of the loss Hessian on a batch, from Hessian-vector products.

The operator (`hvp_operator`) is kept apart from the eigen-solver (`top_eigenvalue`), so either can change alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, jvp

Operator = Callable[[torch.Tensor], torch.Tensor]
log = logging.getLogger(__name__)


def hvp_operator(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None = None):
    """v -> H v for the loss of `model` on (x, y), H the Hessian in the model's parameters (flattened).

    Forward-over-reverse through torch.func on a functional copy of the parameters: the model's own parameters,
    buffers and .grad fields are left untouched and no graph stays alive between calls. With dtype=torch.float64
    the products are computed in float64 (the model's parameters are cast in the copy only).
    Returns (operator, flat parameter vector).
    """
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach().to(dtype or p.dtype) for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    xin = x.to(dtype) if dtype is not None and x.is_floating_point() else x
    yin = y.to(dtype) if dtype is not None and y.is_floating_point() else y

    def loss_of(p: dict) -> torch.Tensor:
        return loss_fn(functional_call(model, (p, buffers), (xin,)), yin)

    grad_fn = grad(loss_of)

    def unflatten(v: torch.Tensor) -> dict:
        return {n: t.view(s) for n, t, s in zip(names, v.split(sizes), shapes)}

    def op(v: torch.Tensor) -> torch.Tensor:
        _, hv = jvp(grad_fn, (params,), (unflatten(v.to(params[names[0]].dtype)),))
        return torch.cat([hv[n].reshape(-1) for n in names])

    flat = torch.cat([params[n].reshape(-1) for n in names])
    return op, flat


@dataclass
class Eigen:
    value: float  # the top algebraic eigenvalue
    vector: torch.Tensor  # its unit eigenvector (a warm start for the next call)
    n_hvp: int  # Hessian-vector products spent
    converged: bool = True  # the stopping rule was met (False: max_iter hit; in top_eigenvalue, twice)
    restarts: int = 0  # fresh random starts after hitting max_iter (top_eigenvalue: at most one)


def power_iteration(
    op: Operator,
    dim: int,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    dtype=torch.float32,
    device=None,
    generator=None,
) -> Eigen:
    """Plain power iteration (the algorithm PyHessian uses): converges to the largest-magnitude eigenvalue."""
    v = v0.clone() if v0 is not None else torch.randn(dim, dtype=dtype, device=device, generator=generator)
    v = v / v.norm()
    value = None
    for i in range(1, max_iter + 1):
        hv = op(v)
        new = torch.dot(v, hv).item()
        v = hv / hv.norm()
        if value is not None and abs(new - value) <= tol * abs(value):
            return Eigen(new, v, i)
        value = new
    return Eigen(value, v, max_iter, converged=False)


def top_eigenvalue(
    op: Operator,
    dim: int,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    dtype=torch.float32,
    device=None,
    generator=None,
    max_basis: int = 64,
) -> Eigen:
    """The top algebraic eigenvalue of the symmetric operator, by Lanczos with full reorthogonalization (`lanczos`).

    A run that hits max_iter without converging is run once more, from a fresh random vector drawn from `generator`
    (the authors rerun LOBPCG likewise), with max_iter more products; if that one does not converge either, the
    larger of the two values is returned (a Ritz value never exceeds the top eigenvalue) with converged=False.
    n_hvp counts the products of both.
    """
    first = lanczos(op, dim, v0, tol, max_iter, dtype, device, generator, max_basis)
    if first.converged or not math.isfinite(first.value):
        return first
    log.warning("Lanczos: no convergence in %d Hessian-vector products; restarting from a random vector", max_iter)
    second = lanczos(op, dim, None, tol, max_iter, dtype, first.vector.device, generator, max_basis)
    better = second.converged or (math.isfinite(second.value) and second.value >= first.value)
    best = second if better else first
    return Eigen(best.value, best.vector, first.n_hvp + second.n_hvp, second.converged, restarts=1)


def lanczos(
    op: Operator,
    dim: int,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    dtype=torch.float32,
    device=None,
    generator=None,
    max_basis: int = 64,
) -> Eigen:
    """One Lanczos run with full reorthogonalization.

    Stops when the top Ritz pair's residual ||H u - value u||, a bound on the distance from value to an eigenvalue,
    is at most tol * |value| (converged), or after max_iter Hessian-vector products (not converged). The Krylov basis
    holds at most max_basis vectors; then it restarts from the top Ritz vector. v0 (e.g. the last step's
    eigenvector) is a warm start. (A gap-based estimate, residual^2 / gap, stops sooner but is unreliable in a small
    Krylov space.)
    """
    r = torch.randn(dim, generator=generator, dtype=dtype).to(device if v0 is None else v0.device)
    v = r / r.norm()
    if v0 is not None:  # a little noise, so that a start that is exactly an eigenvector still sees the others
        v = v0.to(dtype) / v0.norm() + 1e-3 * v
        v = v / v.norm()
    n_hvp = 0
    while True:
        basis = torch.empty(max_basis, dim, dtype=dtype, device=v.device)
        basis[0] = v
        alphas: list[float] = []
        betas: list[float] = []
        for j in range(max_basis):
            w = op(basis[j])
            n_hvp += 1
            alphas.append(torch.dot(basis[j], w).item())
            q = basis[: j + 1]
            for _ in range(2):  # full reorthogonalization, twice: float32 loses orthogonality fast
                w = w - q.T @ (q @ w)
            beta = w.norm().item()
            if not math.isfinite(alphas[-1] + beta):  # a diverging run: no eigenvalue to find
                return Eigen(math.nan, basis[j], n_hvp, converged=False)
            theta, s = torch.linalg.eigh(tridiagonal(alphas, betas))
            value, top = theta[-1].item(), s[:, -1]
            residual = beta * abs(top[-1].item())
            # some eigenvalue lies within the residual of the Ritz value (one vector is not a Krylov space yet)
            converged = j > 0 and residual <= tol * abs(value)
            if converged or n_hvp >= max_iter or j == max_basis - 1:
                u = top.to(dtype=dtype, device=v.device) @ q
                u = u / u.norm()
                if converged or n_hvp >= max_iter:
                    return Eigen(value, u, n_hvp, converged)
                v = u  # restart from the top Ritz vector
                break
            if beta <= 1e-12 * max(abs(value), 1e-30):  # an invariant subspace: continue with a fresh direction
                w = torch.randn(dim, generator=generator, dtype=dtype).to(v.device)
                for _ in range(2):
                    w = w - q.T @ (q @ w)
                beta = 0.0
            betas.append(beta)
            basis[j + 1] = w / w.norm()


def tridiagonal(alphas: list[float], betas: list[float]) -> torch.Tensor:
    """The Lanczos matrix T (float64): alphas on the diagonal, betas beside it."""
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t


def sharpness(
    model: nn.Module,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    float64: bool = False,
    generator: torch.Generator | None = None,
) -> Eigen:
    """lambda^H of the loss on (x, y) at the model's current parameters."""
    dtype = torch.float64 if float64 else None
    op, flat = hvp_operator(model, loss_fn, x, y, dtype)
    return top_eigenvalue(op, flat.numel(), v0, tol, max_iter, flat.dtype, flat.device, generator)


def adam_preconditioner(model: nn.Module, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """Adam's diagonal preconditioner P (flattened like hvp_operator's vector) for the step about to be taken.

    From the optimizer's state and the current gradient (.grad, after backward and before the step), docs/paper.md
    section 2: v_{t+1} = b2 v_t + (1 - b2) g_t^2, P = (1 - b1^{t+1}) (sqrt(v_{t+1} / (1 - b2^{t+1})) + eps), so that the
    step is theta <- theta - eta P^-1 m_{t+1}. Parameters without state yet (before torch's lazy init) have v_t = 0
    and t = 0.
    """
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    parts = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        group, state = group_of[id(p)], optimizer.state.get(p, {})
        b1, b2 = group["betas"]
        t = float(state["step"]) if "step" in state else 0.0
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        v = b2 * state["exp_avg_sq"] + (1 - b2) * g * g if "exp_avg_sq" in state else (1 - b2) * g * g
        denom = (v / (1 - b2 ** (t + 1))).sqrt() + group["eps"]
        parts.append(((1 - b1 ** (t + 1)) * denom).reshape(-1))
    return torch.cat(parts).detach()


def pre_sharpness(
    model: nn.Module,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    float64: bool = False,
    generator: torch.Generator | None = None,
) -> Eigen:
    """lambda^{P^-1 H}: the top eigenvalue of the symmetric P^-1/2 H P^-1/2, P Adam's preconditioner (call it
    after backward, before the optimizer step). The eigenvector is in the P^1/2-scaled coordinates."""
    dtype = torch.float64 if float64 else None
    op, flat = hvp_operator(model, loss_fn, x, y, dtype)
    d = adam_preconditioner(model, optimizer).to(flat.dtype).rsqrt()

    def pre_op(v: torch.Tensor) -> torch.Tensor:
        return d * op(d * v)

    return top_eigenvalue(pre_op, flat.numel(), v0, tol, max_iter, flat.dtype, flat.device, generator)


def lambda0_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    n_batches: int,
    generator: torch.Generator,
    augment: Callable | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The n_batches random training minibatches lambda0 is measured on: indices from `generator` (all drawn before
    any is measured), then `augment` (the run's flips, crops, mixup from their own stream), as training sees them."""
    size = batch_size if 0 < batch_size < len(x) else len(x)
    idxs = [torch.randperm(len(x), generator=generator)[:size].to(x.device) for _ in range(n_batches)]
    batches = [(x[idx], y[idx]) for idx in idxs]
    return [augment(xb, yb) for xb, yb in batches] if augment is not None else batches


def initial_sharpness(
    model: nn.Module,
    loss_fn,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    generator: torch.Generator,
    tol: float = 1e-4,
) -> tuple[float, bool]:
    """lambda0: the mean of lambda^H over the batches (docs/paper.md section 1; `lambda0_batches` draws them), and
    whether every solve converged. The batches come from their own RNG streams, so measuring lambda0 does not change the
    training data order or its augmentation."""
    eigens = [sharpness(model, loss_fn, xb, yb, tol=tol, generator=generator) for xb, yb in batches]
    return sum(e.value for e in eigens) / len(eigens), all(e.converged for e in eigens)
