"""The step loop: schedule, step, detect divergence, evaluate, log. `run(cfg)` is the harness's entry point."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import NamedTuple

import torch
from omegaconf import DictConfig

from bench import checkpoint
from bench.config import Config, train_size_problem, validate
from bench.data import EpochSampler, build_dataset
from bench.data.augment import build_augment
from bench.errors import ConfigError
from bench.lifecycle import Lifecycle
from bench.logger import NoLogger
from bench.losses import LOSSES, PER_EXAMPLE, correct, xent_each
from bench.measure import Measurer, fixed_batch, preconditioned, threshold
from bench.models import build_model, num_params
from bench.numerics import build_numerics
from bench.optim import build_optimizer, set_lr
from bench.optim.initialization import build_init
from bench.optim.lambda0 import Lambda0
from bench.optim.warmup import Theta0, build_warmup, resolved
from bench.progress import progress_bar
from bench.runfolder.check import check_run_folder, same_device_config
from bench.runfolder.store import RunStore
from bench.seeding import derive, generator
from bench.signals import STOP_SIGNALS

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: CUDA is not available on this machine (use device=auto or device=cpu)")
    return torch.device(name)


def output_dir() -> Path:
    """Hydra's output folder for this run (the current folder when called outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


class Trainer:
    """Builds a run from a validated config and trains it."""

    def __init__(self, cfg: Config, store: RunStore, logger: NoLogger | None = None, identity: str = "", data=None):
        self.cfg = cfg
        self.store = store
        self.run_identity = identity  # checkpoint.pt carries it: a checkpoint of another run is refused
        self.logger = logger or NoLogger()  # mirrors each metrics row (bench/logger.py)
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self._numerics = build_numerics(cfg, self.device)  # precision, deterministic, compile: set explicitly
        self.data = data or build_dataset(cfg.dataset, self.device)  # data: a packed run's members share it
        if problem := train_size_problem(cfg, len(self.data.x_train)):  # datasets whose size is known only now
            raise ConfigError(problem)
        with torch.random.fork_rng(devices=[]):  # init from its own stream, built on the CPU for any device
            torch.manual_seed(derive(cfg.seed, "init"))
            model = build_model(cfg.model, self.data.input_shape, self.data.num_classes)
        self.model = model.to(self.device)
        self._forward = self._numerics.forward(self.model)  # the training forward (compiled, autocast); else eager
        self.num_params = num_params(self.model)
        self.loss_fn = LOSSES[cfg.loss]
        self.extras: dict = self._numerics.record()  # run-level values that go into result.json (lambda0, ...)
        # the prepare steps at theta0, each `prepare(theta0) -> records`: lambda0 (the rate unit, before the optimizer
        # exists), the optimizer's initial state (spent first batch, GI-/RI-Adam's v0), the warmup method's (e.g. the
        # catapult search, docs/paper.md section 3)
        theta0 = Theta0(self.model, None, self.loss_fn, self.data, self.extras)
        lambda0 = Lambda0(cfg, self.device)
        self.extras.update(lambda0.prepare(theta0))
        self.lr = cfg.optimizer.lr * lambda0.unit  # eta_trgt in absolute units
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters(), self.lr)
        self.schedule = build_warmup(cfg, self.lr, lambda0.unit)  # the `schedule` option's warmup method, by name
        self.sampler = EpochSampler(len(self.data.x_train), cfg.batch_size, generator(cfg.seed, "data"), self.device)
        theta0.optimizer, theta0.sampler = self.optimizer, self.sampler
        theta0.augment = build_augment(cfg.dataset, cfg.seed, self.device, stream="g0_augment")
        self.extras.update(resolved(cfg.schedule))  # T_wrm from schedule.warmup_fraction
        for step in (build_init(cfg), self.schedule):  # the initialization by optimizer.name, then the warmup method
            self.extras.update(step.prepare(theta0))
        self.augment = build_augment(cfg.dataset, cfg.seed, self.device)
        self.rows: dict[int, dict] = {}  # step -> one row of metrics.csv
        self.measurer = Measurer(  # sharpness during training (measure.every)
            cfg.measure,
            self.model,
            self.loss_fn,
            self.optimizer,
            threshold=lambda s: threshold(cfg.optimizer, self.schedule(s)),
            preconditioned=preconditioned(cfg.optimizer),
            log_row=self.log_row,
            seed=cfg.seed,
            fixed=fixed_batch(cfg, self.data, self.device),
        )
        self.step = 0  # steps done
        self.pending: list[Pending] = []  # steps whose loss is not read on the host yet (`flush`)
        self.initial_loss: float | None = None
        self.means = RunningMeans(self.device)  # of the training minibatches since the last evaluation
        self.ckpt = self.checkpointer()  # resumed from at the start (`resume`), saved by `end_step`

    def checkpointer(self) -> checkpoint.Checkpointer:
        """checkpoint.pt in the run folder, of this run's components and identity."""
        cfg = self.cfg
        return checkpoint.Checkpointer(
            self.store.dir, self.components, self.run_identity, cfg.checkpoint_every, cfg.steps, self.extras
        )

    def components(self) -> dict:
        """The run's state, by name: what checkpoint.pt holds (each has state_dict / load_state_dict)."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "sampler": self.sampler,  # data order: its generator, permutation and position
            "augment": self.augment,  # its generator
            "schedule": self.schedule,  # closed form, or the catapult's eta_c (persistent: level, reference loss)
            "measurer": self.measurer,  # its generator and the eigen-solver's warm-start vectors
            "means": self.means,
            "progress": Progress(self),  # step, metrics rows, initial loss, extras (result.json's records)
            "rng": checkpoint.GlobalRNG(),
        }

    # --- one step ------------------------------------------------------------------------------------------

    def train_step(self, s: int) -> torch.Tensor:
        """Step s (counted from 1), without reading anything back to the host: its loss (at the parameters before the
        update) and correct count wait on the device in `pending` until the next `flush`. Returns the loss."""
        x, y = self.next_batch(s)
        with self._numerics.training():  # TF32 under precision=tf32, for this forward and backward only
            out = self._forward(x)
            loss = self.loss_fn(out, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        return self.update(s, x, y, out, loss)

    def next_batch(self, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step s's minibatch (augmented), with the schedule's rate set (a pack calls it for each member)."""
        idx = self.sampler.next()
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        x, y = self.augment(x, y)
        set_lr(self.optimizer, self.schedule(s))
        return x, y

    def update(self, s: int, x: torch.Tensor, y: torch.Tensor, out: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """Step s once the gradients are in .grad (alone or in a pack): the warmup method's hook, the measurement, the
        optimizer step; its loss and correct count join `pending`, unread. Returns the loss."""
        self.schedule.after_backward(s, loss, lambda: self.loss_fn(self.model(x), y))  # e.g. persistent catapult
        self.measurer.step(s, x, y, loss)
        self.optimizer.step()
        loss = loss.detach()
        self.pending.append(Pending(s, loss, correct(out.detach(), y), len(x)))
        return loss

    def flush(self) -> int | None:
        """Read the pending steps' losses on the host (one sync) and take them in order, as if read at each step:
        the initial loss, the running sums, divergence. Returns the first diverged step when the run stops there
        (stop_on_divergence; the steps after it are dropped: nothing recorded comes from them), else None."""
        if not self.pending:
            return None
        pending, self.pending = self.pending, []
        losses = torch.stack([p.loss for p in pending]).tolist()
        for p, loss in zip(pending, losses):
            if self.initial_loss is None:
                self.initial_loss = loss
            self.means.add(loss, p.correct, p.size)
            if "diverged_step" not in self.extras and self.diverged(loss):
                self.note_divergence(p.step, loss)
                if self.cfg.stop_on_divergence:
                    return p.step
        return None

    def note_divergence(self, s: int, loss: float) -> None:
        self.extras["diverged_step"] = s  # in extras: a checkpoint keeps it when training goes on
        self.log_row(s, train_loss=loss)
        self.store.write_metrics(list(self.rows.values()))
        self.logger.log(self.rows[s])
        log.warning("diverged at step %d: loss %.4g (initial %.4g)", s, loss, self.initial_loss)

    def diverged(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.cfg.diverge_factor * self.initial_loss

    # --- evaluation and logging ----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Test loss and accuracy over the whole test set, in chunks of eval_batch_size: the losses of each example,
        summed once in float64, so that the chunks do not change a bit of the result."""
        x, y = self.data.x_test, self.data.y_test
        losses, xents, n_correct = [], [], 0.0
        for i in range(0, len(x), self.cfg.eval_batch_size):
            out = self.model(x[i : i + self.cfg.eval_batch_size])
            yb = y[i : i + self.cfg.eval_batch_size]
            losses.append(PER_EXAMPLE[self.cfg.loss](out, yb).double())
            n_correct += float(correct(out, yb))
            if self.data.is_lm:  # perplexity = exp(next-token cross-entropy), whatever the training loss
                xents.append(xent_each(out, yb).double())
        metrics = {"test_loss": torch.cat(losses).sum().item() / len(x), "test_acc": n_correct / len(x)}
        if self.data.is_lm:
            metrics["test_ppl"] = math.exp(torch.cat(xents).sum().item() / len(x))
        return metrics

    def log_row(self, step: int, **values) -> dict:
        row = self.rows.setdefault(step, {"step": step, "lr": self.schedule(max(step, 1))})
        row.update(values)
        return row

    def log_eval(self, step: int) -> dict:
        """Running means of the training minibatches since the last evaluation, and a test-set pass."""
        row = self.log_row(step, **self.means.pop(), **self.evaluate())
        self.store.write_metrics(list(self.rows.values()))
        self.logger.log(row)
        log.info(
            "step %d/%d lr %.4g train_loss %.4g test_loss %.4g test_acc %.4f",
            step,
            self.cfg.steps,
            row["lr"],
            row.get("train_loss", float("nan")),
            row["test_loss"],
            row["test_acc"],
        )
        return row

    # --- the loop ------------------------------------------------------------------------------------------

    def train(self) -> dict:
        """The steps from the checkpoint's (or 1) to the last, each ended by `end_step` (a pack of runs calls the
        same per-step code: bench/ensemble.py)."""
        start = time.time()
        ckpt = self.resume()
        bar = progress_bar(self.cfg.steps, initial=self.step)
        for s in range(self.step + 1, self.cfg.steps + 1):
            try:
                self.train_step(s)
            except Exception:  # a step after an unread divergence may fail: the run had stopped before it
                if not self.stopped_at_divergence():
                    raise
                break
            bar.update()
            signalled = ckpt.signalled()  # read once: a signal arriving later is handled after the next step
            if self.end_step(s, signalled):
                break
            ckpt.hand_on(signalled, f"checkpointed at step {s}")
        bar.close()
        return self.outcome(time.time() - start)

    def resume(self) -> checkpoint.Checkpointer:
        """The run's checkpointer, after resuming from checkpoint.pt when the run folder has one (self.step: its)."""
        self.ckpt.resume()
        return self.ckpt

    @property
    def sync_every(self) -> int:
        """Steps between two reads of the losses: every step when the warmup method reads each loss anyway
        (`reads_loss`: the persistent catapult)."""
        return 1 if self.schedule.reads_loss else self.cfg.sync_every

    def end_step(self, s: int, signalled: list) -> bool:
        """After step s: the losses are read back to the host (`flush`) every `sync_every` steps, at each
        evaluation and checkpoint, at the end, and while the measurer logs each step's loss: a step never waits
        for the device otherwise. Then the evaluation and the checkpoint that are due (every checkpoint_every
        steps, and when `signalled`). True when the run stops at a divergence read here (stop_on_divergence):
        self.step is then that step, as the per-step loop records it."""
        self.step = s
        evaluate = s % self.cfg.eval_every == 0 or s == self.cfg.steps
        save = self.ckpt.periodic(s) or bool(signalled)
        if evaluate or save or len(self.pending) >= self.sync_every or self.measurer.active(s):
            if self.stopped_at_divergence():
                return True
        if evaluate:
            self.log_eval(s)
        if save:
            self.ckpt.save(s)
        return False

    def stopped_at_divergence(self) -> bool:
        """Read the pending steps; True when the run stops at a divergence among them (self.step: that step)."""
        if (stop := self.flush()) is None:
            return False
        self.step = stop  # steps after it are not counted
        return True

    def outcome(self, wall_time: float) -> dict:
        """The run's result: completed, or diverged (the step recorded when its divergence was read)."""
        diverged_step = self.extras.pop("diverged_step", None)
        return self.result("diverged" if diverged_step else "completed", diverged_step, wall_time)

    def result(self, status: str, diverged_step: int | None, wall_time: float) -> dict:
        evals = [r for r in self.rows.values() if "test_acc" in r]
        last = evals[-1] if evals and status == "completed" else {}
        return {
            "status": status,
            "stop_step": self.step,
            "diverged_step": diverged_step,
            "initial_loss": self.initial_loss,
            "final_train_loss": last.get("train_loss", math.nan),
            "final_train_acc": last.get("train_acc", math.nan),
            "last_train_acc": self.means.last_acc(),  # the authors' Adam failure rule (bench.runfolder.trainable)
            "final_test_loss": last.get("test_loss", math.nan),
            "final_test_acc": last.get("test_acc", math.nan),
            "best_test_acc": max((r["test_acc"] for r in evals), default=math.nan),
            "best_test_loss": min((r["test_loss"] for r in evals), default=math.nan),
            "num_params": self.num_params,
            "num_classes": self.data.num_classes,
            "lr": self.lr,
            "seed": self.cfg.seed,
            "device": str(self.device),
            "wall_time_s": wall_time,
            **self.extras,
        }


class Pending(NamedTuple):
    """A step whose loss and correct count are still on the device (0-dim tensors)."""

    step: int
    loss: torch.Tensor
    correct: torch.Tensor
    size: int


class RunningMeans:
    """Sums of the training minibatches' loss and correct predictions since the last evaluation, and the last
    minibatch's correct count and size (kept across evaluations)."""

    def __init__(self, device: torch.device | None = None):
        self.device = device  # where the correct counts (0-dim tensors, no sync per step) live
        self.loss_sum, self.correct, self.seen, self.steps = 0.0, 0, 0, 0
        self.last: tuple = (0, 0)  # (correct, size) of the last minibatch

    def add(self, loss: float, n_correct, n: int) -> None:
        self.loss_sum += loss
        self.correct += n_correct
        self.seen += n
        self.steps += 1
        self.last = (n_correct, n)

    def last_acc(self) -> float:
        """The last training minibatch's accuracy (at the parameters before its update); NaN before any step."""
        n_correct, n = self.last
        return float(n_correct) / n if n else math.nan

    def pop(self) -> dict:
        """train_loss and train_acc (nothing when no step was taken), then start again."""
        means = {}
        if self.steps:
            means = {"train_loss": self.loss_sum / self.steps, "train_acc": float(self.correct) / self.seen}
        self.loss_sum, self.correct, self.seen, self.steps = 0.0, 0, 0, 0
        return means

    def state_dict(self) -> dict:
        n_correct = self.correct.detach().cpu() if isinstance(self.correct, torch.Tensor) else self.correct
        last = (float(self.last[0]), self.last[1])
        return {"loss_sum": self.loss_sum, "correct": n_correct, "seen": self.seen, "steps": self.steps, "last": last}

    def load_state_dict(self, state: dict) -> None:
        self.loss_sum, self.correct, self.seen, self.steps = (
            state[k] for k in ("loss_sum", "correct", "seen", "steps")
        )
        self.last = tuple(state.get("last", (0, 0)))  # a checkpoint from before it was kept: NaN until the next step
        if isinstance(self.correct, torch.Tensor):
            self.correct = self.correct.to(self.device)


class Progress:
    """The Trainer's own state: steps done, metrics rows so far, the initial loss, and extras (result.json's
    run-level records, which the catapult schedule also updates: the same dict is kept)."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def state_dict(self) -> dict:
        t = self.trainer
        if t.pending:  # the loop flushes before every checkpoint: these steps would be lost
            raise RuntimeError(f"checkpoint at step {t.step} with {len(t.pending)} steps not read yet")
        return {
            "step": t.step,
            "rows": plain(list(t.rows.values())),
            "initial_loss": t.initial_loss,
            "extras": plain(t.extras),
        }

    def load_state_dict(self, state: dict) -> None:
        t = self.trainer
        t.step = state["step"]
        t.rows = {row["step"]: dict(row) for row in state["rows"]}
        t.initial_loss = state["initial_loss"]
        t.extras.clear()
        t.extras.update(state["extras"])


def plain(value):
    """numpy scalars and the like -> Python numbers, so that weights_only loading accepts them."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if not isinstance(value, torch.Tensor) and hasattr(value, "item"):
        return value.item()
    return value


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Validate, check the folder's identity, build, train; write config.yaml, metrics.csv and, last, result.json
    into the run folder (Hydra's output folder unless run_dir is given): bench/lifecycle.py."""
    typed = validate(cfg)  # a ConfigError here: nothing has been computed or written
    run_dir = Path(run_dir or output_dir())
    if (same := same_device_config(run_dir, cfg)) is not cfg:  # device=auto and the device it ran on: one run
        cfg, typed = same, validate(same)
    check_run_folder(run_dir, cfg)  # a folder of another config is neither resumed nor skipped, nor touched
    life = Lifecycle(cfg, typed, run_dir)
    if (done := life.start()) is not None:
        return done  # finished before: nothing to do (force=true reruns)
    with life.recording(), STOP_SIGNALS:  # SIGUSR2 (pre-timeout), SIGTERM: checkpoint, stop or requeue
        result = Trainer(typed, life.store, life.logger, life.identity).train()
    return life.finish(result)
