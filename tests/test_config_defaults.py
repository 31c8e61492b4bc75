"""One source for every default: a YAML key under conf/ either differs from the value it would have without it, or is
a documented override (ALLOWED, one line of why each). An option's YAML is compared with its schema (bench/config.py
and the launchers' dataclasses); config.yaml and every preset with what their defaults list composes to without
their own keys. Also: presets are chosen without '+', and each preset's `name` sets its sweep folder."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import hydra_plugins.warmup_bench  # noqa: F401  (stores the launchers' schemas: hydra/launcher/base_*)
from bench.sweeps.preflight import compose_error
from tests.conftest import CONF

# "file: key" -> why the key restates the value it would have anyway (keep this list short)
ALLOWED = {
    "experiment/fig3_wrn_sp_mse.yaml: loss": "the preset is named after its loss; the other Figure 3 presets inherit",
}

OPTION_GROUPS = ("model", "dataset", "optimizer", "schedule", "logger", "hydra/launcher")
OPTIONS = sorted(p.relative_to(CONF).as_posix() for g in OPTION_GROUPS for p in (CONF / g).glob("*.yaml"))
# a preset's own option group (experiment/cpu/method/: the methods one preset sweeps) holds fragments, not presets
PRESETS = sorted(
    p.relative_to(CONF).as_posix()
    for d in ("experiment", "sweep")
    for p in (CONF / d).rglob("*.yaml")
    if "method" not in p.relative_to(CONF).parts
)
PARAMS = "hydra.sweeper.params"  # its keys are dotted override names (optimizer.lr): one leaf each


def leaves(tree, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every leaf of a YAML body (the defaults list is not a key)."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if key == "defaults":
            continue
        if key == PARAMS and isinstance(v, dict):
            out.update({f"{PARAMS}[{p}]": value for p, value in v.items()})
        elif isinstance(v, dict) and v:
            out.update(leaves(v, f"{key}."))
        else:
            out[key] = v
    return out


def lookup(tree, key: str):
    """The value at a key of leaves(), or a sentinel when the tree does not have it."""
    path, _, param = key.partition("[")
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return (node or {}).get(param.rstrip("]"), KeyError) if param else node


def body(path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def restated(name: str, own: dict, base: dict) -> list[str]:
    found = [k for k, v in leaves(own).items() if lookup(base, k) is not KeyError and lookup(base, k) == v]
    return [f"{name}: {k}={leaves(own)[k]!r}" for k in found if f"{name}: {k}" not in ALLOWED]


@pytest.mark.parametrize("name", OPTIONS)
def test_option_yaml_sets_only_what_differs_from_its_schema(name):
    own = body(CONF / name)
    group = name.rsplit("/", 1)[0]
    schema = next(d for d in own["defaults"] if isinstance(d, str) and d.startswith("base_"))
    base = OmegaConf.to_container(ConfigStore.instance().load(f"{group}/{schema}.yaml").node, resolve=False)
    assert not (found := restated(name, own, base)), f"restate their schema's default (it lives there): {found}"


@pytest.fixture(scope="module")
def conf_copy(tmp_path_factory):
    conf = tmp_path_factory.mktemp("copy") / "conf"
    shutil.copytree(CONF, conf)
    return conf


def compose_without_own_keys(conf, name: str, overrides: list[str]) -> dict:
    """The config (hydra node included) that `overrides` compose to when `name` keeps only its defaults list (in
    `conf`, a copy of conf/; the file is restored after)."""
    text = (CONF / name).read_text()
    own = yaml.safe_load(text) or {}
    header = "# @package _global_\n" if text.startswith("# @package _global_") else ""
    kept = {"defaults": own["defaults"]} if "defaults" in own else {}
    (conf / name).write_text(header + (yaml.safe_dump(kept) if kept else ""))
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
    finally:
        (conf / name).write_text(text)
    return OmegaConf.to_container(cfg, resolve=False)


@pytest.mark.parametrize("name", ["config.yaml", *PRESETS])
def test_config_and_presets_set_only_what_differs(conf_copy, name):
    """config.yaml against the schemas and Hydra's own defaults; a preset against what it builds on (its defaults
    list: config.yaml, the options it selects, the presets it inherits)."""
    group, _, option = name.removesuffix(".yaml").partition("/")
    overrides = [f"{group}={option}"] if option else []
    base = compose_without_own_keys(conf_copy, name, overrides)
    assert not (found := restated(name, body(CONF / name), base)), f"restate what it builds on: {found}"


def test_allow_list_names_real_keys():
    for entry in ALLOWED:
        name, _, key = entry.partition(": ")
        assert lookup(body(CONF / name), key) is not KeyError, f"ALLOWED names a key that is gone: {entry}"


def test_each_preset_name_sets_its_sweep_folder():
    """Each preset's one `name` key is its path under its group (no hydra.sweep.dir of its own), and the sweep folder
    follows from it; without a preset, the launch's date and time."""
    for name in PRESETS:
        option = name.removesuffix(".yaml").split("/", 1)[1]
        assert body(CONF / name).get("name") == option, f"{name}: set name: {option}"
        assert "dir" not in (body(CONF / name).get("hydra", {}).get("sweep") or {}), f"{name}: name sets the folder"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for overrides, folder in (
            (["experiment=cpu/fig3_wrn_sp_xent"], "cpu/fig3_wrn_sp_xent"),
            (["sweep=demo"], "demo"),
            (["experiment=fig3_wrn_sp_mse", "sweep=demo"], "demo"),  # a sweep after an experiment: the sweep's
            ([], r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d"),
        ):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
            assert re.fullmatch(f"outputs/sweeps/{folder}", cfg.hydra.sweep.dir), overrides


def test_plus_form_is_refused_in_one_line_naming_the_plain_form():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        with pytest.raises(Exception) as e:
            compose("config", overrides=["+experiment=fig3_wrn_sp_xent"])
    line = "+experiment=fig3_wrn_sp_xent: experiment is in the defaults list already; choose it without '+': "
    assert str(compose_error(e.value)) == line + "experiment=fig3_wrn_sp_xent"


# The check (the fig3_wrn_sp_xent preset prints with `--cfg job` with no CIFAR on disk) is the first command
# line of tests/test_cli.py::test_printing_a_config_needs_no_data (that preset, +sweep=demo, --cfg job).
