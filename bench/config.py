"""Structured configs: the types and the checks of every key a run reads.

Each config group (model, dataset, optimizer, schedule, logger) has one dataclass per option, registered in Hydra's
ConfigStore as `<group>/base_<name>`; the YAML files under conf/ extend them. OmegaConf refuses a wrong type or an
unknown key when the config is composed; `validate()` checks values (ranges, choices) through each dataclass's
`__post_init__`, which `OmegaConf.to_object` calls. Every failure is a `ConfigError` whose message is one line
naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config key has a value the harness cannot run with."""


def require(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: {why}")


def require_choice(key: str, value: Any, choices: tuple) -> None:
    require(value in choices, key, value, f"must be one of {', '.join(map(str, choices))}")


# --- model ---------------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    name: str = MISSING
    param: str = "sp"  # sp | mup (SPEC section 5)

    def __post_init__(self) -> None:
        require_choice("model.param", self.param, ("sp", "mup"))


@dataclass
class FCNConfig(ModelConfig):
    name: str = "fcn"
    depth: int = 4  # d dense layers: d - 1 hidden of width n, then the readout
    width: int = 512
    activation: str = "relu"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.depth >= 1, "model.depth", self.depth, "must be >= 1")
        require(self.width >= 1, "model.width", self.width, "must be >= 1")
        require_choice("model.activation", self.activation, ("relu", "tanh", "gelu", "linear"))


# --- dataset -------------------------------------------------------------------------------------------------


@dataclass
class DatasetConfig:
    name: str = MISSING
    num_examples: int = 0  # training examples to keep (a fixed subset); 0 keeps them all

    def __post_init__(self) -> None:
        require(self.num_examples >= 0, "dataset.num_examples", self.num_examples, "must be >= 0 (0 = all)")


@dataclass
class Mnist5kConfig(DatasetConfig):
    name: str = "mnist5k"
    num_test: int = 1000  # held-out images of the 5,000; the split is fixed, independent of the seed

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 < self.num_test < 5000, "dataset.num_test", self.num_test, "must be in 1..4999")


# --- optimizer -----------------------------------------------------------------------------------------------


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = 0.1  # eta_trgt, the target learning rate
    # absolute: lr as written; inverse_sharpness: lr (and schedule.lr_init) in units of 1/lambda0, lambda0 the
    # mean sharpness over lambda0_batches training minibatches at initialization (SPEC section 1)
    lr_unit: str = "absolute"
    lambda0_batches: int = 10

    def __post_init__(self) -> None:
        require(self.lr > 0, "optimizer.lr", self.lr, "must be > 0")
        require_choice("optimizer.lr_unit", self.lr_unit, ("absolute", "inverse_sharpness"))
        require(self.lambda0_batches >= 1, "optimizer.lambda0_batches", self.lambda0_batches, "must be >= 1")


@dataclass
class SGDConfig(OptimizerConfig):
    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.momentum < 1, "optimizer.momentum", self.momentum, "must be in [0, 1)")
        require(not self.nesterov or self.momentum > 0, "optimizer.nesterov", self.nesterov, "needs momentum > 0")


# --- schedule ------------------------------------------------------------------------------------------------


@dataclass
class ScheduleConfig:
    name: str = "linear"
    lr_init: float = 0.0  # eta_init, the rate the warmup starts from
    warmup_steps: int = 1  # T_wrm; 0 and 1 both mean no warmup
    k: float = 1.0  # warmup exponent: eta_init + (eta_trgt - eta_init) (s / T_wrm)^k
    p: float = 0.0  # after warmup: 0 = constant, 1 = cosine decay to eta_trgt / 10

    def __post_init__(self) -> None:
        require(self.lr_init >= 0, "schedule.lr_init", self.lr_init, "must be >= 0")
        require(self.warmup_steps >= 0, "schedule.warmup_steps", self.warmup_steps, "must be >= 0")
        require(self.k > 0, "schedule.k", self.k, "must be > 0")
        require(self.p >= 0, "schedule.p", self.p, "must be >= 0")


# --- logger --------------------------------------------------------------------------------------------------


@dataclass
class LoggerConfig:
    name: str = "none"


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class Config:
    model: Any = MISSING
    dataset: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    logger: Any = MISSING
    seed: int = 0  # drives init, data order and augmentation (separate streams derived from it)
    steps: int = 1000  # T, total training steps
    batch_size: int = 128  # 0 = full batch
    eval_every: int = 100  # steps between evaluations (and one at the end)
    eval_batch_size: int = 1024  # chunk size of the test-set pass; no effect on results
    loss: str = "mse"  # xent | mse
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads for this run; 0 leaves torch's default
    diverge_factor: float = 1e5  # stop when the loss exceeds this multiple of the initial loss (or is NaN/inf)
    checkpoint_every: int = 0  # save checkpoint.pt every this many steps (0 = only at the pre-timeout signal)
    force: bool = False  # rerun even if the run folder holds a finished result.json

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", self.steps, "must be >= 1")
        require(self.batch_size >= 0, "batch_size", self.batch_size, "must be >= 0 (0 = full batch)")
        require(self.eval_every >= 1, "eval_every", self.eval_every, "must be >= 1")
        require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "must be >= 1")
        require_choice("loss", self.loss, ("xent", "mse"))
        require_choice("device", self.device, ("auto", "cpu", "cuda"))
        require(self.threads >= 0, "threads", self.threads, "must be >= 0")
        require(self.diverge_factor > 1, "diverge_factor", self.diverge_factor, "must be > 1")
        require(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every, "must be >= 0")


GROUPS: dict[str, dict[str, type]] = {
    "model": {"fcn": FCNConfig},
    "dataset": {"mnist5k": Mnist5kConfig},
    "optimizer": {"sgd": SGDConfig},
    "schedule": {"linear": ScheduleConfig},
    "logger": {"none": LoggerConfig},
}


def register() -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent)."""
    from bench import launcher, runid

    runid.register_resolver()  # ${run_id:...} names the run folders of a sweep (hydra.sweep.subdir)
    launcher.register()  # hydra/launcher=slurm|local (conf/hydra/launcher/) extend these
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, options in GROUPS.items():
        for name, node in options.items():
            cs.store(group=group, name=f"base_{name}", node=node)


def validate(cfg: DictConfig) -> Config:
    """Check every value; return the typed config. Raises ConfigError with a one-line message."""
    try:
        typed = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as e:  # OmegaConf's own errors: wrong type, missing value, unknown key
        raise ConfigError(one_line(e)) from e
    return typed


def one_line(e: Exception) -> str:
    """OmegaConf and Hydra errors span lines; keep the first, with the key when they name one."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    key = getattr(e, "full_key", None)
    return f"{key}: {first}" if key and key not in first else first


register()
