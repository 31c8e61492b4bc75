"""What tests share besides fixtures (tests/conftest.py): the overrides of a tiny run, the comparison of two runs'
result files, and the environment of a subprocess that runs this checkout."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from bench.runfolder.store import json_safe

ROOT = Path(__file__).resolve().parent.parent

# a run that takes well under a second on one CPU thread
TINY = ("model.width=32", "model.depth=2", "steps=12", "eval_every=4", "batch_size=64", "device=cpu")

# result.json keys about the launch, not about what it computed: how long it took, the commit it ran (a dirty tree
# while tests edit files), the machine. Two runs of one config compare equal without them.
LAUNCH_KEYS = ("wall_time_s", "git_sha", "hostname")


def tiny_run(*changes: str, drop: tuple[str, ...] = ()) -> list[str]:
    """TINY with keys changed (`key=value` replaces TINY's value of key, or is added) and keys dropped: a test that
    needs other values says which, and the rest stays the shared tiny run (a key given twice would be refused)."""
    changed = {c.partition("=")[0]: c for c in changes}
    keys = [o.partition("=")[0] for o in TINY]
    kept = [changed.pop(k, o) for k, o in zip(keys, TINY) if k not in drop]
    return kept + list(changed.values())


def comparable(result: dict) -> dict:
    """result.json's content less LAUNCH_KEYS: what two runs of the same config must agree on."""
    return {k: v for k, v in result.items() if k not in LAUNCH_KEYS}


def json_roundtrip(result: dict) -> dict:
    """A result as its result.json reads back (NaN null, inf "inf"): what a run returns, compared with its file."""
    return json.loads(json.dumps(json_safe(result)))


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment for a subprocess that runs this checkout (PYTHONPATH: the checkout) with Hydra's
    short errors (HYDRA_FULL_ERROR=0: one line, as a user sees it); `extra` added last."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0", **extra}


# a researcher's own methods, in a package outside the project, registered with their schemas as a module of
# bench/optim would (docs/extending.md): the warmup eta(s) = eta_init + (eta_trgt - eta_init) min(1, s / T_wrm)^(1/2),
# and the initialization of Adam with v0 = a constant
PLUGIN_MODULE = """
import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from bench.config import AdamConfig, ScheduleConfig
from bench.optim import initialization
from bench.optim.adam_init import set_second_moment
from bench.optim.warmup import WarmupMethod, register


@dataclass
class MySqrtConfig(ScheduleConfig):
    name: str = "my_sqrt"
    reads: ClassVar[tuple[str, ...]] = ("lr_init", "warmup_steps")


@register("my_sqrt", schema=MySqrtConfig)
class MySqrt(WarmupMethod):
    def lr(self, s):
        t_wrm, lr_init = self.cfg.schedule.warmup_steps, self.cfg.schedule.lr_init * self.unit
        if t_wrm <= 1:
            return self.lr_trgt
        return lr_init + (self.lr_trgt - lr_init) * math.sqrt(min(s, t_wrm) / t_wrm)


@dataclass
class MyConstAdamConfig(AdamConfig):
    name: str = "my_const_adam"
    v0: float = 0.25


@initialization.register("my_const_adam", schema=MyConstAdamConfig)
class MyConstAdam(initialization.OptimizerInit):
    def prepare(self, ctx):
        self.spend_first_batch(ctx.sampler)
        params = [p for group in ctx.optimizer.param_groups for p in group["params"]]
        set_second_moment(ctx.optimizer, [torch.full_like(p, self.cfg.optimizer.v0) for p in params])
        return {"v0": self.cfg.optimizer.v0}
"""


def plugin_package(tmp_path: Path, broken: bool = False) -> tuple[Path, Path]:
    """(pythonpath_dir, config_dir): a package outside the project, `my_warmup` 0.1, whose entry point `my_sqrt` of
    the group warmup_bench.methods registers the warmup method my_sqrt and the initialization my_const_adam,
    installed as pip would leave it (the module and its dist-info, on PYTHONPATH: no pip run), and a config dir for
    `--config-dir` with their options (schedule/my_sqrt.yaml, optimizer/my_const_adam.yaml) and the leaderboard
    entry of my_sqrt over 5% of the budget (leaderboard/entry/my_sqrt.yaml). broken: the module fails on import
    (ModuleNotFoundError)."""
    site, conf = tmp_path / "site", tmp_path / "conf"
    dist = site / "my_warmup-0.1.dist-info"
    for folder in (dist, conf / "schedule", conf / "optimizer", conf / "leaderboard" / "entry"):
        folder.mkdir(parents=True, exist_ok=True)
    module = "import not_a_module\n" if broken else PLUGIN_MODULE
    (site / "my_warmup.py").write_text(textwrap.dedent(module))
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-warmup\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[warmup_bench.methods]\nmy_sqrt = my_warmup\n")
    option = "# square-root warmup (the package my_warmup)\ndefaults:\n  - base_my_sqrt\n  - _self_\n"
    (conf / "schedule" / "my_sqrt.yaml").write_text(option)
    (conf / "optimizer" / "my_const_adam.yaml").write_text(option.replace("my_sqrt", "my_const_adam"))
    (conf / "leaderboard" / "entry" / "my_sqrt.yaml").write_text(
        "# Square-root warmup over 5% of the budget: the package my_warmup's method (tests/helpers.py)\n"
        "families: [sgd, adam]\n"
        "overrides:\n"
        "  - schedule=my_sqrt\n"
        "  - schedule.warmup_fraction=0.05\n"
    )
    return site, conf
