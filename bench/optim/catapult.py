"""Choosing eta_init with the loss catapult (docs/paper.md section 3), with forward passes only.

Every trial is one optimizer step from the same point theta0, with the same gradient g0 of one batch, and the loss
is evaluated on that batch: L(eta) = L(theta0 - step(eta, g0)). The step is the optimizer's own (SGD, momentum,
Adam from its current state, GI-Adam's included); parameters and optimizer state are restored after each trial.
- Exponential search from eta0: double eta while L(eta) < L0, stopping at eta_trgt; bracket [eta / 2, eta].
  If the loss already rises at eta0, eta_c = eta0; if it never rises up to eta_trgt, eta_c = eta_trgt.
- Binary search on the bracket until L(upper) <= L0 (1 + delta); eta_c = the upper end.
- Where no search result is usable (non-finite L0 or g0, or the forward-pass budget is spent), eta_init falls
  back to eta_trgt / 10.
The warmup then runs eta_c + eta_trgt (s / T_wrm)^k, capped (`Schedule.full_ramp`). The persistent variant
re-estimates eta_c whenever the training loss falls below the loss at the last reference point.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.data.augment import build_augment
from bench.measure import preconditioned
from bench.optim.schedule import Schedule, build_schedule
from bench.optim.warmup import Theta0, WarmupMethod, register
from bench.seeding import generator
from bench.sharpness import hvp_operator, lambda0_batches, sharpness

log = logging.getLogger(__name__)

CATAPULTS = ("catapult", "persistent_catapult")
LossOf = Callable[[], torch.Tensor]


@dataclass
class Search:
    lr_c: float  # eta_c: the upper end of the last bracket, the rate the warmup starts from
    lr_lower: float  # the lower end (the largest rate seen to lower the loss)
    loss0: float  # L(theta0) on the search batch
    forward_passes: int  # trial forward passes (the gradient's own forward/backward not counted)
    outcome: str  # bracketed | rises_at_start | stable_at_target | fallback


class TrialStep:
    """L(eta) after one optimizer step with the fixed gradient g0; leaves parameters, state, grads and lr as found."""

    def __init__(self, optimizer: torch.optim.Optimizer, loss_of: LossOf, grads: list[torch.Tensor]):
        self.optimizer = optimizer
        self.loss_of = loss_of
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.grads = [g.detach().clone() for g in grads]
        self.theta0 = [p.detach().clone() for p in self.params]
        self.state0 = {p: _clone(optimizer.state[p]) for p in self.params if p in optimizer.state}
        self.saved_grads = [p.grad for p in self.params]
        self.saved_lrs = [group["lr"] for group in optimizer.param_groups]
        self.forward_passes = 0

    def __call__(self, lr: float) -> float:
        self._load_state()
        for p, g in zip(self.params, self.grads):
            p.grad = g.clone()  # a fresh copy: an optimizer may modify the gradient in place
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        with torch.no_grad():
            loss = self.loss_of().item()
            for p, t in zip(self.params, self.theta0):
                p.copy_(t)
        self.forward_passes += 1
        return loss if math.isfinite(loss) else math.inf

    def restore(self) -> None:
        self._load_state()
        for p, g in zip(self.params, self.saved_grads):
            p.grad = g
        for group, lr in zip(self.optimizer.param_groups, self.saved_lrs):
            group["lr"] = lr

    def _load_state(self) -> None:
        self.optimizer.state.clear()
        self.optimizer.state.update({p: _clone(s) for p, s in self.state0.items()})


def _clone(state: dict) -> dict:
    return {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}


def catapult_search(
    optimizer: torch.optim.Optimizer,
    loss_of: LossOf,
    lr_trgt: float,
    lr0: float = 1e-4,
    delta: float = 0.1,
    max_forward_passes: int = 100,
    grads: list[torch.Tensor] | None = None,
    loss0: float | None = None,
) -> Search:
    """eta_c at the current parameters: `loss_of()` is the loss on the search batch; g0 = its gradient unless
    `grads` (with `loss0`) are given, e.g. the gradient the training step has just computed."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if grads is None:
        loss = loss_of()
        grads = list(torch.autograd.grad(loss, params, allow_unused=True))
        loss0 = loss.item()
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    fallback = Search(lr_trgt / 10, lr_trgt / 10, loss0, 0, "fallback")
    if not math.isfinite(loss0) or not all(torch.isfinite(g).all() for g in grads):
        return fallback
    trial = TrialStep(optimizer, loss_of, grads)
    try:
        search = _search(trial, loss0, lr_trgt, min(lr0, lr_trgt), delta, max_forward_passes)
    finally:
        trial.restore()
    if search is None:
        return dataclasses.replace(fallback, forward_passes=trial.forward_passes)
    return search


def _search(trial: TrialStep, loss0: float, lr_trgt: float, lr: float, delta: float, budget: int) -> Search | None:
    if trial(lr) >= loss0:
        return Search(lr, lr, loss0, trial.forward_passes, "rises_at_start")
    lower = lr
    while True:  # exponential search
        if lr >= lr_trgt:
            return Search(lr_trgt, lr_trgt, loss0, trial.forward_passes, "stable_at_target")
        if trial.forward_passes >= budget:
            return None
        lr = min(2 * lr, lr_trgt)
        loss_upper = trial(lr)
        if loss_upper >= loss0:
            upper = lr
            break
        lower = lr
    while loss_upper > loss0 * (1 + delta):  # binary search on [lower, upper]
        if trial.forward_passes >= budget:
            return None
        mid = (lower + upper) / 2
        loss = trial(mid)
        if loss < loss0:
            lower = mid
        else:
            upper, loss_upper = mid, loss
    return Search(upper, lower, loss0, trial.forward_passes, "bracketed")


def records(
    search: Search, lr_trgt: float, warmup_steps: int, rayleigh: float | None = None, along_g0: bool = True
) -> dict:
    """What result.json keeps of a search: eta_c, the forward passes, and T_reach / T_save of docs/paper.md section
    3; with `rayleigh` = R(g0), also R(g0) and eta_rayleigh = 2 / R(g0), the second-order estimate of the rate where
    a step along -g0 starts to raise the loss (`rayleigh_g0`). `along_g0` false (the Adam family, whose step
    P^-1 m is not along g0): eta_rayleigh is null, and eta_rayleigh_null says why."""
    t_wrm = max(warmup_steps, 1)
    frac = min(search.lr_c / lr_trgt, 1.0)
    out = {
        "eta_c": search.lr_c,
        "eta_c_lower": search.lr_lower,
        "catapult_outcome": search.outcome,
        "catapult_forward_passes": search.forward_passes,
        "T_reach": t_wrm * (1 - frac),
        "T_save": t_wrm * frac - search.forward_passes / 2,
    }
    if rayleigh is not None:
        out["rayleigh_g0"] = rayleigh
        out["eta_rayleigh"] = (2 / rayleigh if rayleigh > 0 else math.inf) if along_g0 else None
        if not along_g0:
            out["eta_rayleigh_null"] = NOT_ALONG_G0
    return out


NOT_ALONG_G0 = "the Adam family's step P^-1 m is not along g0: 2 / R(g0) does not estimate where its loss rises"


def rayleigh_g0(model: torch.nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> float:
    """R(g0) = g0' H g0 / |g0|^2 at the model's parameters on (x, y): one Hessian-vector product.

    Why eta_c is not 2 / lambda0: one SGD step of rate eta changes the loss by -eta |g0|^2 + eta^2 g0'H g0 / 2 to
    second order, which turns positive at eta = 2 / R(g0), and R(g0) <= lambda^H, well below it when g0 is not
    aligned with the top eigenvector (cross-entropy at initialization). 2 / R(g0) is that second-order estimate,
    exact on a quadratic only: the loss's real first rise along -g0 (what the search finds) lies at 0.6-3.7x of it
    on FCN-4-256 and up to 15x at width 16, where the higher-order terms matter (docs/paper.md section 3)."""
    op, _ = hvp_operator(model, loss_fn, x, y)
    params = [p for _, p in model.named_parameters() if p.requires_grad]  # hvp_operator's order
    grads = torch.autograd.grad(loss_fn(model(x), y), params, allow_unused=True)
    g0 = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]).detach()
    return torch.dot(g0, op(g0)).item() / torch.dot(g0, g0).item()


class PersistentCatapult:
    """The persistent catapult warmup: the rate is the last eta_c (capped by the decay schedule `base`); whenever
    the training loss falls below the loss at the reference point theta*, eta_c is re-estimated at theta_t (the
    exponential search starting from the current rate) and theta* = theta_t, until eta reaches eta_trgt.

    The reference loss `ref_loss` is L(theta*) on the batch its search used: at theta0 the search batch
    (`search_batch`), later the training minibatch of the step that set it; each step's training minibatch loss
    (before its update) is compared with it. Why: it is the training loss the step has already computed (a fixed
    evaluation batch would cost a forward pass every step), and the search at theta_t runs on that same batch, so
    the reference is its L0. The price is minibatch noise: a lucky batch can start a search early, which costs
    forward passes (counted) and re-estimates eta_c, nothing else."""

    def __init__(self, base: Schedule, optimizer, search: Search, delta: float, budget: int, extras: dict):
        self.base = base  # eta_trgt from step 1, then the decay of the schedule's p after T_wrm
        self.optimizer = optimizer
        self.level = search.lr_c
        self.ref_loss = search.loss0
        self.delta, self.budget = delta, budget
        self.extras = extras
        # T_reach: the step at which eta reaches eta_trgt (None: not reached); T_save has no closed form here
        extras.update({"catapult_searches": 1, "T_reach": 0 if self.done else None, "T_save": None})

    @property
    def done(self) -> bool:
        return self.level >= self.base.lr

    def __call__(self, s: int) -> float:
        return min(self.level, self.base(s))

    def state_dict(self) -> dict:
        """The level (the last eta_c) and the reference loss; the counters live in extras (Trainer's progress)."""
        return {"base": self.base.state_dict(), "level": self.level, "ref_loss": self.ref_loss}

    def load_state_dict(self, state: dict) -> None:
        self.base = Schedule.from_state(state["base"])
        self.level, self.ref_loss = state["level"], state["ref_loss"]

    def observe(self, s: int, loss: float, loss_of: LossOf) -> None:
        """Step s, after backward, before the update: `loss` is L(theta_t) on this batch, `loss_of` recomputes it."""
        if self.done or not loss < self.ref_loss:
            return
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        found = catapult_search(self.optimizer, loss_of, self.base.lr, self.level, self.delta, self.budget, grads, loss)
        if found.outcome != "fallback":
            self.level = found.lr_c
        self.ref_loss = loss
        self.extras["catapult_searches"] += 1
        self.extras["catapult_forward_passes"] += found.forward_passes
        if self.done:
            self.extras["T_reach"] = s
        for group in self.optimizer.param_groups:
            group["lr"] = self(s)
        log.info("step %d: loss %.4g below the reference, eta_c -> %.4g", s, loss, self.level)


def search_batch(cfg, data) -> tuple[torch.Tensor, torch.Tensor]:
    """The search's batch at theta0: batch_size training examples from the own "catapult" stream, augmented (flips,
    crops, mixup) from the own "catapult_augment" stream, as a training minibatch is and as lambda0's batches are.
    Why augmented: eta_c is the rate the training steps start from, and they see augmented batches; and the
    persistent catapult compares training minibatch losses with this batch's loss (its first reference), which a
    clean batch would bias low. The own streams leave the training data order and augmentation as they are."""
    stream = generator(cfg.seed, "catapult")
    augment = build_augment(cfg.dataset, cfg.seed, data.x_train.device, stream="catapult_augment")
    return lambda0_batches(data.x_train, data.y_train, cfg.batch_size, 1, stream, augment)[0]


def search_at_theta0(cfg, lr_trgt: float, model, optimizer, loss_fn, data, known: dict) -> tuple[Search, float, dict]:
    """eta_c from one search at theta0 on `search_batch` (the training data order is left as it is). Returns the
    search, its tolerance delta, and its records for result.json: R(g0) and 2 / R(g0) on the search batch (null for
    the Adam family) and, unless `known` (the run's records so far) hold it, lambda0 as the search batch's
    sharpness."""
    sc = cfg.schedule
    xb, yb = search_batch(cfg, data)
    delta = sc.delta or (0.1 if cfg.optimizer.name == "sgd" else 0.01)
    lr0 = sc.search_lr or lr_trgt / max(sc.warmup_steps, 1)
    search = catapult_search(optimizer, lambda: loss_fn(model(xb), yb), lr_trgt, lr0, delta, sc.max_forward_passes)
    rayleigh = rayleigh_g0(model, loss_fn, xb, yb)
    out = records(search, lr_trgt, sc.warmup_steps, rayleigh, along_g0=not preconditioned(cfg.optimizer))
    if "lambda0" not in known:  # the run's lambda0 (lr_unit=inverse_sharpness) or the search batch's sharpness
        out["lambda0"] = sharpness(model, loss_fn, xb, yb, generator=generator(cfg.seed, "catapult_lambda0")).value
    log.info(
        "catapult search: eta_c = %.4g (%s, %d forward passes), eta_trgt = %.4g",
        search.lr_c,
        search.outcome,
        search.forward_passes,
        lr_trgt,
    )
    return search, delta, out


@register("catapult")
class Catapult(WarmupMethod):
    """schedule=catapult: eta_init = eta_c from the search at theta0, then eta_c + eta_trgt (s / T_wrm)^k, capped."""

    not_packed = "catapult schedules are never packed"  # a forward-pass search per member

    def __init__(self, cfg, lr: float, unit: float = 1.0):
        super().__init__(cfg, lr, unit)
        self.schedule = build_schedule(cfg.schedule, lr, cfg.steps, unit)

    def prepare(self, ctx: Theta0) -> dict:
        search, _, out = search_at_theta0(
            self.cfg, self.lr_trgt, ctx.model, ctx.optimizer, ctx.loss_fn, ctx.data, ctx.records
        )
        self.schedule = dataclasses.replace(self.schedule, lr_init=min(search.lr_c, self.lr_trgt), full_ramp=True)
        return out

    def lr(self, s: int) -> float:
        return self.schedule(s)

    def state_dict(self) -> dict:
        return self.schedule.state_dict()  # eta_c is in lr_init

    def load_state_dict(self, state: dict) -> None:
        self.schedule = Schedule.from_state(state)


@register("persistent_catapult")
class PersistentCatapultWarmup(WarmupMethod):
    """schedule=persistent_catapult: `PersistentCatapult` from the search at theta0; after backward, a training loss
    below the reference re-estimates eta_c. Its counters (catapult_searches, ...) are records of the run: they live
    in the run's records (`Theta0.records`, checkpointed with the trainer's progress)."""

    not_packed = "catapult schedules are never packed"
    reads_loss = True  # the loss of every step, on the host: the documented exception to the sync-free loop

    def __init__(self, cfg, lr: float, unit: float = 1.0):
        super().__init__(cfg, lr, unit)
        self.base = build_schedule(cfg.schedule, lr, cfg.steps, unit)
        self.catapult: PersistentCatapult | None = None

    def prepare(self, ctx: Theta0) -> dict:
        search, delta, out = search_at_theta0(
            self.cfg, self.lr_trgt, ctx.model, ctx.optimizer, ctx.loss_fn, ctx.data, ctx.records
        )
        base = dataclasses.replace(self.base, lr_init=self.base.lr, full_ramp=False)
        budget = self.cfg.schedule.max_forward_passes
        self.catapult = PersistentCatapult(base, ctx.optimizer, search, delta, budget, out)
        self.catapult.extras = ctx.records  # the counters go on in the run's records, where `out` is merged
        return out

    def lr(self, s: int) -> float:
        return self.catapult(s)

    def after_backward(self, s: int, loss, loss_of) -> None:
        self.catapult.observe(s, loss.item(), loss_of)

    def state_dict(self) -> dict:
        return self.catapult.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.catapult.load_state_dict(state)
