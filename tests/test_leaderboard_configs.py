"""The leaderboard's entries (conf/leaderboard/entry/) and GPU-tier workloads (conf/leaderboard/workload/gpu_*.yaml):
every baseline of the contract is there, says what it is, and composes and validates on top of the workloads of
its optimizer families, in process, without data (the GPU tier's data lives where its GPUs are)."""

from pathlib import Path

import pytest
import yaml

from bench.config import validate
from tests.conftest import compose_cfg
from tests.helpers import ROOT

LEADERBOARD = ROOT / "conf" / "leaderboard"
BASELINES = {
    "no_warmup": {"sgd", "adam"},
    "linear_1pct": {"sgd", "adam"},
    "linear_5pct": {"sgd", "adam"},
    "linear_10pct": {"sgd", "adam"},
    "linear_25pct": {"sgd", "adam"},
    "cosine_5pct": {"sgd", "adam"},
    "untuned_exponential": {"adam"},
    "untuned_linear": {"adam"},
    "catapult": {"sgd", "adam"},
    "persistent_catapult": {"sgd"},
    "gi_adam": {"adam"},
    "ri_adam": {"adam"},
    "radam": {"adam"},
}
# workload-like override lists of either family, small (the CPU tier's own workloads are conf/leaderboard/workload/)
SMALL = {
    "sgd": ["model=fcn", "dataset=mnist5k", "optimizer=sgd", "loss=mse", "batch_size=128", "steps=512"],
    "adam": ["model=fcn", "model.param=mup", "optimizer=adam", "optimizer.b2=0.99", "loss=xent", "steps=512"],
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


ENTRIES = {p.stem: load(p) for p in sorted((LEADERBOARD / "entry").glob("*.yaml"))}
GPU = {p.stem: load(p) for p in sorted((LEADERBOARD / "workload").glob("gpu_*.yaml"))}


def test_every_baseline_is_an_entry_of_its_families_and_says_what_it_is():
    assert {name: set(e["families"]) for name, e in ENTRIES.items()} == BASELINES
    for name in ENTRIES:
        assert (LEADERBOARD / "entry" / f"{name}.yaml").read_text().startswith("# "), f"{name}: no comment"


def composed(workload: list[str], entry: str):
    return validate(compose_cfg(*workload, *ENTRIES[entry]["overrides"], "device=cpu"))


@pytest.mark.parametrize("family", sorted(SMALL))
def test_every_entry_of_a_family_composes_on_its_workloads(family):
    for name in (n for n, e in ENTRIES.items() if family in e["families"]):
        cfg = composed(SMALL[family], name)
        assert cfg.steps == 512 and cfg.model.name == "fcn", name


def test_entries_set_what_they_name_and_keep_the_workloads_optimizer_values():
    adam = SMALL["adam"]
    assert composed(SMALL["sgd"], "linear_5pct").schedule.warmup_steps == 26  # round(0.05 x 512)
    assert composed(SMALL["sgd"], "linear_25pct").schedule.warmup_steps == 128
    assert composed(SMALL["sgd"], "no_warmup").schedule.warmup_steps == 1
    cosine = composed(adam, "cosine_5pct").schedule
    assert (cosine.name, cosine.warmup_steps) == ("cosine_warmup", 26)
    gi = composed(adam, "gi_adam").optimizer
    assert (gi.name, gi.b2, gi.spend_first_batch) == ("gi_adam", 0.99, True)
    assert composed(adam, "untuned_linear").schedule.form == "linear"


@pytest.mark.parametrize("workload", sorted(GPU))
def test_each_gpu_workload_composes_with_each_of_its_entries(workload):
    spec = GPU[workload]
    assert spec["tier"] == "gpu" and spec["seeds"] >= 3 and spec["rule"] in ("test", "authors")
    assert (LEADERBOARD / "workload" / f"{workload}.yaml").read_text().startswith("# ")
    lrs = spec["lrs"]
    assert all(b / a == pytest.approx(2) for a, b in zip(lrs, lrs[1:])), "lrs: log2-spaced"
    entries = [n for n, e in ENTRIES.items() if spec["family"] in e["families"]]
    assert len(entries) == (8 if spec["family"] == "sgd" else 12)
    optimizers = {"sgd"} if spec["family"] == "sgd" else {"adam", "gi_adam", "ri_adam", "radam"}
    for name in entries:
        assert composed(spec["overrides"], name).optimizer.name in optimizers, name
    linear = composed(spec["overrides"], "linear_5pct")
    assert linear.schedule.warmup_steps == round(0.05 * linear.steps)
