"""Structured configs: the types and the checks of every key a run reads.

Each config group (model, dataset, optimizer, schedule, logger) has one dataclass per option, registered in Hydra's
ConfigStore as `<group>/base_<name>`; the YAML files under conf/ extend them. Every default is written once, here: an
option's YAML only names its schema (and says what the option is), config.yaml picks the options, and a preset
(conf/experiment/, conf/sweep/) sets only what differs from what it builds on (tests/test_config_defaults.py).
OmegaConf refuses a wrong type or an unknown key when the config is composed; `validate()` checks values (ranges,
choices) through each dataclass's `__post_init__`, which `OmegaConf.to_object` calls. Every failure is a
`ConfigError` whose message is one line naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from bench.errors import ConfigError


def require(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: {why}")


def require_finite(value: float, key: str) -> None:
    """inf (or NaN) cannot be meant: refused before any compute."""
    require(math.isfinite(value), key, value, "must be a finite number")


def require_choice(key: str, value: Any, choices: tuple) -> None:
    require(value in choices, key, value, f"must be one of {', '.join(map(str, choices))}")


# --- model ---------------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    name: str = MISSING
    # sp | mup (docs/paper.md section 5; the Transformer's muP also scales attention logits by 1/d_head)
    param: str = "sp"

    def __post_init__(self) -> None:
        require_choice("model.param", self.param, ("sp", "mup"))


@dataclass
class FCNConfig(ModelConfig):
    name: str = "fcn"
    depth: int = 4  # d dense layers: d - 1 hidden of width n, then the readout
    width: int = 512
    activation: str = "relu"  # relu | tanh | gelu | linear

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.depth >= 1, "model.depth", self.depth, "must be >= 1")
        require(self.width >= 1, "model.width", self.width, "must be >= 1")
        require_choice("model.activation", self.activation, ("relu", "tanh", "gelu", "linear"))


@dataclass
class CNNConfig(ModelConfig):
    name: str = "cnn"
    # 5 | 7 | 10: Myrtle-5, -7 or -10: depth - 1 conv layers (3x3, ReLU, average pools), then the readout
    depth: int = 5
    width: int = 64  # channels of every convolution (the authors: 64)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("model.depth", self.depth, (5, 7, 10))
        require(self.width >= 1, "model.width", self.width, "must be >= 1")


@dataclass
class WRNConfig(ModelConfig):
    name: str = "wrn"
    depth: int = 16  # WRN-16-k: 3 stages x 2 blocks
    width_factor: int = 4  # k: stage s has 16 * 2^s * k channels

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("model.depth", self.depth, (16,))
        require(self.width_factor >= 1, "model.width_factor", self.width_factor, "must be >= 1")


@dataclass
class TransformerConfig(ModelConfig):
    name: str = "transformer"
    depth: int = 4  # blocks
    width: int = 128  # model dimension
    heads: int = 4
    context: int = 64  # longest sequence (positions); dataset.context must not exceed it
    ln: str = "pre"  # pre (Pre-LN) | post (Post-LN) | pre_no_final (Pre-LN without the final LN)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.depth >= 1, "model.depth", self.depth, "must be >= 1")
        require(self.heads >= 1, "model.heads", self.heads, "must be >= 1")
        require(self.width % self.heads == 0, "model.width", self.width, f"must be a multiple of heads={self.heads}")
        require(self.context >= 1, "model.context", self.context, "must be >= 1")
        require_choice("model.ln", self.ln, ("pre", "post", "pre_no_final"))


# --- dataset -------------------------------------------------------------------------------------------------


@dataclass
class DatasetConfig:
    name: str = MISSING
    num_examples: int = 0  # training examples to keep, a fixed random subset; 0 keeps them all (Figures 1, 2: 5000)

    def __post_init__(self) -> None:
        require(self.num_examples >= 0, "dataset.num_examples", self.num_examples, "must be >= 0 (0 = all)")


@dataclass
class ImageDatasetConfig(DatasetConfig):
    # augmentation of the training batches, on the device, seeded from `seed` (docs/paper.md section 6)
    flip: bool = False  # horizontal flip with probability 0.5
    crop_padding: int = 0  # zero-pad this many pixels and crop back at a random offset (0 = off; the paper: 4)
    mixup: bool = False  # mix each example with the reversed batch, weight ~ U(0, 1), soft labels

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.crop_padding >= 0, "dataset.crop_padding", self.crop_padding, "must be >= 0 (0 = off)")


@dataclass
class Mnist5kConfig(ImageDatasetConfig):
    name: str = "mnist5k"
    num_test: int = 1000  # held-out images of the 5,000; the split is fixed, independent of the seed

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 < self.num_test < 5000, "dataset.num_test", self.num_test, "must be in 1..4999")


@dataclass
class TorchvisionConfig(ImageDatasetConfig):
    """An image dataset that torchvision reads (and downloads, with download=true) under root."""

    root: str = "data"  # torchvision's root folder (a relative path is relative to where you launch)
    download: bool = False  # true: torchvision downloads the files into root if they are missing


@dataclass
class Cifar10Config(TorchvisionConfig):
    name: str = "cifar10"


@dataclass
class Cifar100Config(TorchvisionConfig):
    name: str = "cifar100"


@dataclass
class MnistConfig(TorchvisionConfig):
    name: str = "mnist"


@dataclass
class FashionMnistConfig(TorchvisionConfig):
    name: str = "fashion_mnist"


@dataclass
class TextConfig(DatasetConfig):
    """Language modelling: windows of `context` tokens, next-token targets, a BPE tokenizer cached next to the data."""

    name: str = "text"
    source: str = "pydoc"  # pydoc: Python's own documentation text (offline); wikitext2: wiki.*.raw under root
    root: str = "data/wikitext-2-raw"  # where wiki.*.raw live, and where the tokenizer is cached
    vocab_size: int = 4096
    context: int = 64  # tokens per window (<= model.context)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("dataset.source", self.source, ("pydoc", "wikitext2"))
        require(self.vocab_size >= 64, "dataset.vocab_size", self.vocab_size, "must be >= 64")
        require(self.context >= 1, "dataset.context", self.context, "must be >= 1")


# --- optimizer -----------------------------------------------------------------------------------------------


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = 0.1  # eta_trgt, the target learning rate
    # absolute: lr as written; inverse_sharpness: lr (and schedule.lr_init) in units of 1/lambda0, lambda0 the
    # mean sharpness over lambda0_batches training minibatches at initialization (docs/paper.md section 1)
    lr_unit: str = "absolute"
    lambda0_batches: int = 10  # minibatches averaged for lambda0 (the paper: 10)

    def __post_init__(self) -> None:
        require_finite(self.lr, "optimizer.lr")
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


@dataclass
class AdamConfig(OptimizerConfig):
    """Adam, both moments bias-corrected (docs/paper.md section 4); gi_adam, ri_adam and radam share the keys."""

    name: str = "adam"
    lr: float = 1e-3
    b1: float = 0.9  # first-moment decay
    b2: float = 0.999  # second-moment decay
    eps: float = 1e-8  # added to sqrt(v_hat)
    # spend the first training batch before step 1 (the authors do, for every Adam variant: they compute g0 on it);
    # gi_adam / ri_adam take g0 from it, or from a batch of their own stream when false
    spend_first_batch: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.b1 < 1, "optimizer.b1", self.b1, "must be in [0, 1)")
        require(0 <= self.b2 < 1, "optimizer.b2", self.b2, "must be in [0, 1)")
        require_finite(self.eps, "optimizer.eps")
        require(self.eps > 0, "optimizer.eps", self.eps, "must be > 0")


@dataclass
class GIAdamConfig(AdamConfig):
    name: str = "gi_adam"  # v0 = g0^2 from the first training batch (spent on it)
    spend_first_batch: bool = True


@dataclass
class RIAdamConfig(AdamConfig):
    name: str = "ri_adam"  # v0 = r^2, r ~ N(0, I) rescaled to ||g0||
    spend_first_batch: bool = True


@dataclass
class RAdamConfig(AdamConfig):
    name: str = "radam"


# --- schedule ------------------------------------------------------------------------------------------------


@dataclass
class ScheduleConfig:
    name: str = "linear"
    lr_init: float = 0.0  # eta_init, the rate the warmup starts from
    warmup_steps: int = 1  # T_wrm; 0 and 1 both mean no warmup
    # T_wrm as a fraction of steps instead: T_wrm = max(1, round(fraction * steps)), halves rounded up (0.05 of 512
    # steps: 26), resolved once (`Config`); refused with a warmup_steps of its own. result.json records T_wrm
    warmup_fraction: float | None = None
    k: float = 1.0  # warmup exponent (1 = linear, 0.5 = square root): eta_init + (eta_trgt - eta_init) (s / T_wrm)^k
    p: float = 0.0  # after warmup: 0 = constant, 1 = cosine decay to eta_trgt / 10
    # the keys (besides name) the method reads: a key of the schema not listed must keep its default, else the run is
    # refused in one line (bench.optim.warmup.check_config). Each schema declares its own; one that declares none
    # reads only the keys it adds to the schema it extends
    reads: ClassVar[tuple[str, ...]] = ("lr_init", "warmup_steps", "k", "p")

    def __post_init__(self) -> None:
        for key in ("lr_init", "k", "p"):
            require_finite(getattr(self, key), f"schedule.{key}")
        require(self.lr_init >= 0, "schedule.lr_init", self.lr_init, "must be >= 0")
        require(self.warmup_steps >= 0, "schedule.warmup_steps", self.warmup_steps, "must be >= 0")
        if (f := self.warmup_fraction) is not None:
            require(0 <= f <= 1, "schedule.warmup_fraction", f, "must be in [0, 1] (a fraction of steps)")
            default = type(self).warmup_steps
            why = f"set together with schedule.warmup_steps={self.warmup_steps}: give one of them"
            require(self.warmup_steps == default, "schedule.warmup_fraction", f, why)
        require(self.k > 0, "schedule.k", self.k, "must be > 0")
        require(self.p >= 0, "schedule.p", self.p, "must be >= 0")


@dataclass
class CosineConfig(ScheduleConfig):
    name: str = "cosine"
    p: float = 1.0  # decay exponent (1 = cosine)
    reads: ClassVar[tuple[str, ...]] = ("lr_init", "warmup_steps", "k", "p")


@dataclass
class CatapultConfig(ScheduleConfig):
    """eta_init = eta_c from the loss catapult at theta0, then eta_c + eta_trgt (s/T_wrm)^k: docs/paper.md section 3."""

    name: str = "catapult"
    search_lr: float = 1e-4  # eta0, where the exponential search starts (absolute); 0 = eta_trgt / T_wrm
    delta: float = 0.0  # binary-search tolerance L(upper) <= L0 (1 + delta); 0 = 0.1 for SGD, 0.01 for Adam
    max_forward_passes: int = 100  # a search that needs more falls back to eta_init = eta_trgt / 10
    # lr_init is set by the search (refused below with its own line)
    reads: ClassVar[tuple[str, ...]] = ("warmup_steps", "k", "p", "search_lr", "delta", "max_forward_passes")

    def __post_init__(self) -> None:
        super().__post_init__()
        require_finite(self.search_lr, "schedule.search_lr")
        require_finite(self.delta, "schedule.delta")
        why = f"is set by the catapult search (schedule={self.name}); leave it 0"
        require(self.lr_init == 0, "schedule.lr_init", self.lr_init, why)
        require(self.search_lr >= 0, "schedule.search_lr", self.search_lr, "must be >= 0 (0 = eta_trgt / T_wrm)")
        require(self.delta >= 0, "schedule.delta", self.delta, "must be >= 0 (0 = 0.1 for SGD, 0.01 for Adam)")
        require(self.max_forward_passes >= 2, "schedule.max_forward_passes", self.max_forward_passes, "must be >= 2")


@dataclass
class PersistentCatapultConfig(CatapultConfig):
    """Re-estimates eta_c whenever the loss falls below the reference point's, until eta reaches eta_trgt."""

    name: str = "persistent_catapult"
    # no ramp: k is not read; warmup_steps is where the decay of p starts
    reads: ClassVar[tuple[str, ...]] = ("warmup_steps", "p", "search_lr", "delta", "max_forward_passes")


# --- logger --------------------------------------------------------------------------------------------------


@dataclass
class LoggerConfig:
    name: str = "none"


@dataclass
class WandbConfig(LoggerConfig):
    name: str = "wandb"
    project: str = "warmup-bench"
    entity: str = ""  # wandb team or user; "" = the account's default
    group: str = ""  # e.g. the sweep's name, to group its runs in the wandb UI: logger.group=demo-sweep
    run_name: str = ""  # the wandb run's display name; "" = the run folder's name
    mode: str = "offline"  # online | offline (files in the run folder, `wandb sync` uploads later) | disabled
    tags: list[str] = field(default_factory=list)  # e.g. logger.tags=[fig3,mup]

    def __post_init__(self) -> None:
        require_choice("logger.mode", self.mode, ("online", "offline", "disabled"))


# --- measure -------------------------------------------------------------------------------------------------


@dataclass
class MeasureConfig:
    """Sharpness during training (bench/measure.py): metrics.csv gains sharpness, threshold, ...; loss every step."""

    every: int = 0  # measure lambda^H (and lambda^{P^-1 H} for Adam) every this many steps; 0 = off (no extra cost)
    until: int = 0  # last step measured, e.g. T_wrm + 100; 0 = to the end of the run
    # current: the step's minibatch (docs/paper.md section 2) | fixed: one training batch drawn once
    batch: str = "current"
    tol: float = 1e-4  # relative tolerance on the eigenvalue (residual bound) of the Lanczos solver
    max_iter: int = 200  # Hessian-vector products per measurement at most
    float64: bool = False  # Hessian-vector products in float64 (the authors' choice for Adam)

    def __post_init__(self) -> None:
        require(self.every >= 0, "measure.every", self.every, "must be >= 0 (0 = off)")
        require(self.until >= 0, "measure.until", self.until, "must be >= 0 (0 = to the end)")
        require_choice("measure.batch", self.batch, ("current", "fixed"))
        require(0 < self.tol < 1, "measure.tol", self.tol, "must be in (0, 1)")
        require(self.max_iter >= 2, "measure.max_iter", self.max_iter, "must be >= 2")


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class Config:
    model: Any = MISSING
    dataset: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    logger: Any = MISSING
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    # a preset's name (conf/experiment/, conf/sweep/): its sweep folder is outputs/sweeps/<name> (conf/config.yaml;
    # "" = a timestamp). Not part of the run's identity (bench/runfolder/ NON_RESULT_KEYS)
    name: str = ""
    seed: int = 0  # drives init, data order and augmentation (separate streams derived from it)
    steps: int = 1000  # T, total training steps
    batch_size: int = 128  # 0 = full batch (gradient descent)
    eval_every: int = 100  # steps between evaluations (and one at the end)
    eval_batch_size: int = 1024  # chunk size of the test-set pass; no effect on results
    loss: str = "mse"  # xent | mse (0.5 * mean over batch and classes of (f - y)^2)
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads for this run; 0 leaves torch's default
    # diverged: the loss is NaN/inf or exceeds this multiple of the initial loss; inf (.inf in YAML) = NaN/inf only,
    # the authors' rule, which the full-scale paper presets use
    diverge_factor: float = 1e5
    stop_on_divergence: bool = True  # false: record the divergence step (status diverged) but train on to the end
    # save checkpoint.pt every this many steps, to resume from (0 = only at the pre-timeout signal)
    checkpoint_every: int = 500
    # read the training losses back to the host every this many steps (and at each evaluation and checkpoint): a step
    # never waits for the GPU; divergence is still found at its exact step. No effect on results (1 = every step; the
    # persistent catapult and measured steps read every step anyway)
    sync_every: int = 32
    force: bool = False  # replace the run in the folder: finished, unfinished or of another config
    # numerics (bench/numerics.py): set explicitly, recorded in result.json, part of the run's identity
    precision: str = "fp32"  # fp32 (TF32 off) | tf32 | bf16 (autocast; the training step only: sharpness, eval FP32)
    deterministic: bool = False  # deterministic algorithms + CUBLAS_WORKSPACE_CONFIG
    compile: bool = False  # torch.compile of the training forward (HVPs, Lanczos, catapult stay eager)
    # the result.json value the task function returns to Hydra's sweeper (Optuna...); a run that did not complete
    # returns the objective's penalty (OBJECTIVES: 0 for an accuracy, inf for a loss)
    objective: str = "best_test_acc"

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", self.steps, "must be >= 1")
        require_choice("precision", self.precision, ("fp32", "tf32", "bf16"))
        require(self.batch_size >= 0, "batch_size", self.batch_size, "must be >= 0 (0 = full batch)")
        require(self.eval_every >= 1, "eval_every", self.eval_every, "must be >= 1")
        require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "must be >= 1")
        require_choice("loss", self.loss, ("xent", "mse"))
        require_choice("device", self.device, ("auto", "cpu", "cuda"))
        require(self.threads >= 0, "threads", self.threads, "must be >= 0")
        require(self.diverge_factor > 1, "diverge_factor", self.diverge_factor, "must be > 1 (inf: NaN/inf only)")
        require(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every, "must be >= 0")
        require(self.sync_every >= 1, "sync_every", self.sync_every, "must be >= 1 (1 = read every step's loss)")
        require_choice("objective", self.objective, OBJECTIVES)
        check_model_dataset(self.model, self.dataset)
        if (f := getattr(self.schedule, "warmup_fraction", None)) is not None:
            self.schedule.warmup_steps = warmup_steps_of(f, self.steps)  # every method reads T_wrm from here
        # the run would end before reaching eta_trgt, yet result.json records eta_trgt. Not checked for the catapult
        # schedules: their records (eta_c, T_reach, T_save) come from the search at theta0 and T_wrm in closed form,
        # and their presets at CPU scale stop after the first steps (conf/experiment/cpu/fig5_catapult_warmup.yaml)
        warmup = self.schedule.warmup_steps
        why = f"is more than steps={self.steps}: the run would end before reaching eta_trgt"
        catapult = self.schedule.name in ("catapult", "persistent_catapult")
        require(catapult or warmup <= self.steps, "schedule.warmup_steps", warmup, why)
        if (n := known_train_size(self.dataset)) is not None and (problem := train_size_problem(self, n)):
            raise ConfigError(problem)


def warmup_steps_of(fraction: float, steps: int) -> int:
    """T_wrm of schedule.warmup_fraction: the nearest whole step to fraction * steps, halves up, at least 1."""
    return max(1, math.floor(fraction * steps + 0.5))


def known_train_size(dataset) -> int | None:
    """Training examples of a dataset whose size the config alone fixes (mnist5k), else None (known on loading)."""
    if dataset.name != "mnist5k":
        return None
    n = 5000 - dataset.num_test
    return min(n, dataset.num_examples) if dataset.num_examples else n


def train_size_problem(cfg: Config, n: int) -> str | None:
    """batch_size larger than the n training examples: one line saying so (0 means full batch), else None."""
    if cfg.batch_size > n:
        return (
            f"batch_size={cfg.batch_size}: larger than the {n} training examples of dataset={cfg.dataset.name} "
            f"(use batch_size<={n}, or batch_size=0 for the full batch)"
        )
    return None


# result.json values a sweeper (Optuna, ...) can optimize, each with the value a run that did not complete (diverged,
# failed) returns instead: the worst the objective can take (accuracy 0, loss inf), so that an optimizing sweeper
# learns where runs diverge and its study goes on (Optuna fails a trial that returns NaN)
OBJECTIVES = {
    "best_test_acc": 0.0,
    "final_test_acc": 0.0,
    "final_train_acc": 0.0,
    "best_test_loss": math.inf,
    "final_test_loss": math.inf,
    "final_train_loss": math.inf,
}


def check_model_dataset(model, dataset) -> None:
    """The Transformer trains on token windows (dataset=text); every other model on images."""
    lm_model, lm_data = model.name == "transformer", dataset.name == "text"
    if lm_model and not lm_data:
        raise ConfigError(f"model=transformer: needs dataset=text, not dataset={dataset.name}")
    if lm_data and not lm_model:
        raise ConfigError(f"model={model.name}: dataset=text needs model=transformer")
    if lm_model:
        require(dataset.context <= model.context, "dataset.context", dataset.context, "must be <= model.context")


GROUPS: dict[str, dict[str, type]] = {
    "model": {"fcn": FCNConfig, "cnn": CNNConfig, "wrn": WRNConfig, "transformer": TransformerConfig},
    "dataset": {
        "mnist5k": Mnist5kConfig,
        "cifar10": Cifar10Config,
        "cifar100": Cifar100Config,
        "mnist": MnistConfig,
        "fashion_mnist": FashionMnistConfig,
        "text": TextConfig,
    },
    "optimizer": {
        "sgd": SGDConfig,
        "adam": AdamConfig,
        "gi_adam": GIAdamConfig,
        "ri_adam": RIAdamConfig,
        "radam": RAdamConfig,
    },
    "schedule": {
        "linear": ScheduleConfig,
        "cosine": CosineConfig,
        "catapult": CatapultConfig,
        "persistent_catapult": PersistentCatapultConfig,
    },
    "logger": {"none": LoggerConfig, "wandb": WandbConfig},
}


def register_option(group: str, name: str, node: type) -> None:
    """A config option defined outside this module (e.g. a warmup method's schema, from its own module): added to
    GROUPS and to Hydra's ConfigStore as base_<name>, so its YAML's `defaults: [base_<name>]` finds it."""
    known = GROUPS.setdefault(group, {})
    if known.get(name, node) is not node:
        raise ValueError(f"{group}={name}: two schemas ({known[name].__name__}, {node.__name__})")
    known[name] = node
    ConfigStore.instance().store(group=group, name=f"base_{name}", node=node)


def register() -> None:
    """Put the schemas in Hydra's ConfigStore, and the resolvers presets use, e.g. `${add:${schedule.warmup_steps},64}`
    (idempotent)."""
    OmegaConf.register_new_resolver("add", lambda *xs: sum(xs), replace=True)
    OmegaConf.register_new_resolver("ceil_div", lambda a, b: -(-a // b), replace=True)
    # ${or_else:${name},${now:...}}: a preset's name, else (name "") the launch's timestamp (hydra.sweep.dir)
    OmegaConf.register_new_resolver("or_else", lambda value, default: value or default, replace=True)
    from bench.runfolder import names

    names.register_resolver()  # ${run_id:...} names the run folders of a sweep (hydra.sweep.subdir)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, options in GROUPS.items():
        for name, node in options.items():
            cs.store(group=group, name=f"base_{name}", node=node)
    from bench.optim.warmup import discover

    try:  # the warmup methods' modules and plugins: those with keys of their own register their schema
        discover()
    except ConfigError:
        pass  # a plugin that cannot be loaded: refused in one line when the run is checked (check_config)


def validate(cfg: DictConfig) -> Config:
    """Check every value; return the typed config. Raises ConfigError with a one-line message."""
    try:
        typed = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as e:  # OmegaConf's own errors: wrong type, missing value, unknown key
        raise ConfigError(one_line(e)) from e
    from bench.optim.warmup import check_config

    check_config(typed)  # the warmup method's checks against the rest of the config (e.g. Adam's b2)
    return typed


def one_line(e: Exception) -> str:
    """OmegaConf and Hydra errors span lines; keep the first, with the key when they name one."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    key = getattr(e, "full_key", None)
    return f"{key}: {first}" if key and key not in first else first


register()
