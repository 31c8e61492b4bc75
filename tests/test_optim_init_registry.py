"""Optimizer initializations are found by name through one registry; the trainer names none of them, and a new one
is one module (a class and its schema) plus its YAML."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra.core.config_store import ConfigStore

import bench
from bench.config import GROUPS, AdamConfig, validate
from bench.optim.adam_init import GIAdam, RIAdam, set_second_moment
from bench.optim.initialization import INITS, OptimizerInit, build_init, register
from tests.conftest import compose_cfg

ROOT = Path(bench.__file__).parent.parent
OPTIONS = sorted(p.stem for p in (ROOT / "conf" / "optimizer").glob("*.yaml"))


@pytest.mark.parametrize("option", OPTIONS)
def test_every_optimizer_option_has_an_initialization(option):
    init = build_init(validate(compose_cfg(f"optimizer={option}", "device=cpu")))
    assert isinstance(init, OptimizerInit)
    assert type(init) is {"gi_adam": GIAdam, "ri_adam": RIAdam}.get(option, OptimizerInit)


@pytest.mark.parametrize("loop", ["bench/train.py", "bench/ensemble.py"])
def test_the_trainer_names_no_initialization(loop):
    source = (ROOT / loop).read_text()
    named = [cls.__name__ for cls in INITS.values() if cls.__name__ in source]
    assert named == [] and "adam_init" not in source, f"{loop} names {named}: it should call OptimizerInit only"


@dataclass
class ConstAdamConfig(AdamConfig):
    name: str = "const_adam"
    v0: float = 0.25  # every entry of Adam's initial second moment


class ConstAdam(OptimizerInit):
    """A new initialization as a user would add it: v0 = a constant, from a key of its own schema."""

    def prepare(self, ctx) -> dict:
        self.spend_first_batch(ctx.sampler)
        params = [p for group in ctx.optimizer.param_groups for p in group["params"]]
        set_second_moment(ctx.optimizer, [torch.full_like(p, self.cfg.optimizer.v0) for p in params])
        return {"v0": self.cfg.optimizer.v0}


@pytest.fixture
def const_adam():
    """ConstAdam registered as its module would register it (taken out again: other tests list the options)."""
    register("const_adam", schema=ConstAdamConfig)(ConstAdam)
    yield
    INITS.pop("const_adam")
    GROUPS["optimizer"].pop("const_adam")
    ConfigStore.instance().repo["optimizer"].pop("base_const_adam.yaml")  # a sweep's jobs unpickle Hydra's store


def test_a_new_initialization_is_a_class_and_its_schema(const_adam, tmp_path, tiny):
    # base_const_adam is what its YAML's `defaults: [base_const_adam]` would compose
    cfg = compose_cfg(*tiny, "optimizer=base_const_adam", "optimizer.lr=0.001", "optimizer.v0=0.5")
    assert isinstance(validate(cfg).optimizer, ConstAdamConfig)
    result = bench.run(cfg, tmp_path)
    assert result["v0"] == 0.5 and json.loads((tmp_path / "result.json").read_text())["v0"] == 0.5
    assert result["status"] == "completed"


def test_its_state_is_in_the_optimizer_before_step_one(const_adam, tmp_path, tiny):
    from bench.runfolder.store import RunStore
    from bench.train import Trainer

    tr = Trainer(validate(compose_cfg(*tiny, "optimizer=base_const_adam", "optimizer.v0=0.5")), RunStore(tmp_path))
    assert type(tr.optimizer) is torch.optim.Adam  # an AdamConfig option builds torch's Adam
    for p in tr.model.parameters():
        state = tr.optimizer.state[p]
        assert state["step"].item() == 0 and not state["exp_avg"].any()
        assert torch.equal(state["exp_avg_sq"], torch.full_like(p, 0.5))
    assert tr.extras["v0"] == 0.5


def test_registering_two_classes_under_one_name_is_refused():
    with pytest.raises(ValueError, match="gi_adam"):
        register("gi_adam")(type("Other", (OptimizerInit,), {}))
