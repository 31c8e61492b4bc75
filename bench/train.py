"""The step loop: schedule, step, detect divergence, evaluate, log. `run(cfg)` is the harness's entry point."""

from __future__ import annotations

import logging
import math
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bench import checkpoint
from bench.config import Config, ConfigError, validate
from bench.data import EpochSampler, build_dataset
from bench.data.augment import build_augment
from bench.failure import describe_failure
from bench.logger import NoLogger, build_logger
from bench.losses import LOSSES, correct, xent
from bench.measure import Measurer
from bench.models import build_model, num_params
from bench.optim import build_optimizer, build_schedule, init_adam_state, set_lr
from bench.optim.catapult import PersistentCatapult, build_catapult
from bench.progress import progress_bar, run_line
from bench.seeding import derive, generator
from bench.sharpness import initial_sharpness, lambda0_batches
from bench.store import RunStore, environment

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

    def __init__(self, cfg: Config, store: RunStore, logger: NoLogger | None = None):
        self.cfg = cfg
        self.store = store
        self.logger = logger or NoLogger()  # mirrors each metrics row (bench/logger.py)
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.data = build_dataset(cfg.dataset, self.device)
        with torch.random.fork_rng(devices=[]):  # init from its own stream, built on the CPU for any device
            torch.manual_seed(derive(cfg.seed, "init"))
            model = build_model(cfg.model, self.data.input_shape, self.data.num_classes)
        self.model = model.to(self.device)
        self.num_params = num_params(self.model)
        self.loss_fn = LOSSES[cfg.loss]
        self.extras: dict = {}  # run-level measurements that go into result.json (lambda0, eta_c, ...)
        unit = self.lr_unit()
        self.lr = cfg.optimizer.lr * unit  # eta_trgt in absolute units
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters(), self.lr)
        self.schedule = build_schedule(cfg.schedule, self.lr, cfg.steps, unit)
        self.sampler = EpochSampler(len(self.data.x_train), cfg.batch_size, generator(cfg.seed, "data"), self.device)
        # Adam family: the first training batch is spent (optimizer.spend_first_batch); GI-/RI-Adam set v0 from g0,
        # the gradient of that (augmented) batch (SPEC section 4)
        g0_augment = build_augment(cfg.dataset, cfg.seed, self.device, stream="g0_augment")
        self.extras.update(
            init_adam_state(
                cfg.optimizer, self.optimizer, self.model, self.loss_fn, self.data, self.sampler, cfg.seed, g0_augment
            )
        )
        # schedule=catapult | persistent_catapult: eta_init from the loss catapult at theta0 (SPEC section 3)
        self.schedule = build_catapult(
            cfg, self.schedule, self.model, self.optimizer, self.loss_fn, self.data, self.extras
        )
        self.augment = build_augment(cfg.dataset, cfg.seed, self.device)
        self.rows: dict[int, dict] = {}  # step -> one row of metrics.csv
        self.measurer = Measurer(self)  # sharpness during training (measure.every)
        self.step = 0  # steps done
        self.initial_loss: float | None = None
        self._loss_sum, self._correct, self._seen, self._steps_since_eval = 0.0, 0, 0, 0

    def lr_unit(self) -> float:
        """1 for absolute rates; 1/lambda0 for rates in units of the initial sharpness (lambda0 goes to result.json,
        and result["lr"] is always the absolute eta_trgt)."""
        if self.cfg.optimizer.lr_unit == "absolute":
            return 1.0
        cfg, stream = self.cfg, generator(self.cfg.seed, "lambda0")
        # augmented as training batches are (the authors draw them from the training stream), from own streams
        augment = build_augment(cfg.dataset, cfg.seed, self.device, stream="lambda0_augment")
        batches = lambda0_batches(
            self.data.x_train, self.data.y_train, cfg.batch_size, cfg.optimizer.lambda0_batches, stream, augment
        )
        lambda0, converged = initial_sharpness(self.model, self.loss_fn, batches, stream)
        self.extras.update(lambda0=lambda0, lambda0_converged=converged)
        log.info(
            "lambda0 = %.4g: eta_trgt = %g / lambda0 = %.4g",
            lambda0,
            self.cfg.optimizer.lr,
            self.cfg.optimizer.lr / lambda0,
        )
        return 1.0 / lambda0

    # --- one step ------------------------------------------------------------------------------------------

    def train_step(self, s: int) -> float:
        """Step s (counted from 1): returns the minibatch loss at the parameters before the update."""
        idx = self.sampler.next()
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        x, y = self.augment(x, y)
        lr = self.schedule(s)
        set_lr(self.optimizer, lr)
        out = self.model(x)
        loss = self.loss_fn(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if isinstance(self.schedule, PersistentCatapult):  # a new low loss re-estimates eta_c (SPEC section 3)
            self.schedule.observe(s, loss.item(), lambda: self.loss_fn(self.model(x), y))
        self.measurer.step(s, x, y, loss)
        self.optimizer.step()
        loss_val = loss.item()
        self._loss_sum += loss_val
        self._correct += correct(out.detach(), y)
        self._seen += len(idx)
        self._steps_since_eval += 1
        return loss_val

    def diverged(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.cfg.diverge_factor * self.initial_loss

    # --- evaluation and logging ----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Test loss and accuracy over the whole test set, in chunks."""
        x, y = self.data.x_test, self.data.y_test
        loss_sum, n_correct, xent_sum = 0.0, 0.0, 0.0
        for i in range(0, len(x), self.cfg.eval_batch_size):
            out = self.model(x[i : i + self.cfg.eval_batch_size])
            yb = y[i : i + self.cfg.eval_batch_size]
            loss_sum += self.loss_fn(out, yb).item() * len(yb)
            n_correct += float(correct(out, yb))
            if self.data.is_lm:  # perplexity = exp(next-token cross-entropy), whatever the training loss
                xent_sum += xent(out, yb).item() * len(yb)
        metrics = {"test_loss": loss_sum / len(x), "test_acc": n_correct / len(x)}
        if self.data.is_lm:
            metrics["test_ppl"] = math.exp(xent_sum / len(x))
        return metrics

    def log_row(self, step: int, **values) -> dict:
        row = self.rows.setdefault(step, {"step": step, "lr": self.schedule(max(step, 1))})
        row.update(values)
        return row

    def log_eval(self, step: int) -> dict:
        """Running means of the training minibatches since the last evaluation, and a test-set pass."""
        train = {}
        if self._steps_since_eval:
            train = {
                "train_loss": self._loss_sum / self._steps_since_eval,
                "train_acc": float(self._correct) / self._seen,
            }
        row = self.log_row(step, **train, **self.evaluate())
        self._loss_sum, self._correct, self._seen, self._steps_since_eval = 0.0, 0, 0, 0
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
        start = time.time()
        ckpt = checkpoint.Checkpointer(self)
        ckpt.resume()  # a checkpoint in the run folder: continue from its step
        bar = progress_bar(self.cfg.steps, initial=self.step)
        for s in range(self.step + 1, self.cfg.steps + 1):
            loss = self.train_step(s)
            bar.update()
            if self.initial_loss is None:
                self.initial_loss = loss
            self.step = s
            if "diverged_step" not in self.extras and self.diverged(loss):
                self.extras["diverged_step"] = s  # in extras: a checkpoint keeps it when training goes on
                self.log_row(s, train_loss=loss)
                self.store.write_metrics(list(self.rows.values()))
                self.logger.log(self.rows[s])
                log.warning("diverged at step %d: loss %.4g (initial %.4g)", s, loss, self.initial_loss)
                if self.cfg.stop_on_divergence:
                    break
            if s % self.cfg.eval_every == 0 or s == self.cfg.steps:
                self.log_eval(s)
            ckpt.after_step(s)  # every checkpoint_every steps, and on the pre-timeout signal
        bar.close()
        diverged_step = self.extras.pop("diverged_step", None)
        return self.result("diverged" if diverged_step else "completed", diverged_step, time.time() - start)

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


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Validate, build, train; write config.yaml, metrics.csv and, last, result.json into the run folder
    (Hydra's output folder unless run_dir is given)."""
    typed = validate(cfg)  # a ConfigError here: nothing has been computed or written
    store = RunStore(run_dir or output_dir())
    if (done := checkpoint.finished_result(store, typed.force)) is not None:
        return done  # finished before: nothing to do (force=true reruns)
    store.write_config(OmegaConf.to_yaml(cfg, resolve=True))
    started = time.time()
    logger, result = build_logger(typed.logger), None
    try:
        logger.start(cfg, store.dir)
        with checkpoint.PREEMPTION:  # the scheduler's pre-timeout signal: checkpoint, then requeue
            result = Trainer(typed, store, logger).train()
    except Exception as e:
        (store.dir / "traceback.txt").write_text(traceback.format_exc())
        result = {
            "status": "failed",
            **describe_failure(e),
            "seed": typed.seed,
            "wall_time_s": time.time() - started,
            **environment(),
        }
        store.write_result(result)
        log.error(run_line(result, store.dir))
        raise
    finally:
        logger.finish(result)  # even when the run fails: wandb is always closed
    result.update(environment())
    store.write_result(result)
    checkpoint.finish(store)
    log.info("%s -> %s", run_line(result, store.dir), store.dir)
    return result
