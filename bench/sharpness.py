"""Sharpness lambda^H: the top eigenvalue of the loss Hessian on a batch, from Hessian-vector products.

The operator (`hvp_operator`) is kept apart from the eigen-solver (`top_eigenvalue`), so either can change alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, jvp

Operator = Callable[[torch.Tensor], torch.Tensor]


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
    return Eigen(value, v, max_iter)


def top_eigenvalue(
    op: Operator,
    dim: int,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    dtype=torch.float32,
    device=None,
    generator=None,
) -> Eigen:
    """The top algebraic eigenvalue of the symmetric operator. (The solver: power iteration for now.)"""
    return power_iteration(op, dim, v0, tol, max_iter, dtype, device, generator)


def sharpness(
    model: nn.Module,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor,
    v0: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    float64: bool = False,
) -> Eigen:
    """lambda^H of the loss on (x, y) at the model's current parameters."""
    dtype = torch.float64 if float64 else None
    op, flat = hvp_operator(model, loss_fn, x, y, dtype)
    return top_eigenvalue(op, flat.numel(), v0, tol, max_iter, flat.dtype, flat.device)


def initial_sharpness(
    model: nn.Module,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    n_batches: int,
    generator: torch.Generator,
    tol: float = 1e-4,
) -> float:
    """lambda0: the mean of lambda^H over n_batches random training minibatches (SPEC section 1).

    The minibatches come from their own RNG stream, so measuring lambda0 does not change the training data order.
    """
    size = batch_size if 0 < batch_size < len(x) else len(x)
    values = []
    for _ in range(n_batches):
        idx = torch.randperm(len(x), generator=generator)[:size].to(x.device)
        values.append(sharpness(model, loss_fn, x[idx], y[idx], tol=tol).value)
    return sum(values) / len(values)
