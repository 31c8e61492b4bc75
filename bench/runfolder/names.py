"""A grid point's folder name (not its run identity, the config hash), derived from its config so that every
launch of a sweep finds it again.

`run_id(overrides, exclude)` (bench/runfolder/) = a readable prefix (the overrides that define the point, short
keys, sorted) and a
short hash of the canonical overrides: `lr=0.5,warmup_steps=64_1f3a9c0e`. The hash makes the name unique however
long the prefix gets (it is cut to stay well under file-name limits), and values are compared as typed, so
`optimizer.lr=1` and `optimizer.lr=1.0` name the same run. Keys that do not change the results (hydra's
`hydra.job.config.override_dirname.exclude_keys`: force, threads, logger, ...) do not count, so rerunning a point with
force=true or more threads lands in the same folder. conf/config.yaml sets
`hydra.sweep.subdir: ${run_id:${hydra.overrides.task},${hydra.job.config.override_dirname.exclude_keys}}`.

A group override that states the default (`optimizer=sgd` where the defaults lists, with the command's presets,
choose sgd anyway) changes nothing in the config, so it does not count either: `optimizer=sgd optimizer.lr=0.1` and
`optimizer.lr=0.1` name one folder. A group a preset sweeps (its hydra.sweeper.params) still counts, so that the
presets' folder names stay as they were. A sweep folder written before this rule keeps its folders: where the folder
the old rule names (with the stated default) exists and the new one does not, that one is used.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from bench.runfolder import run_id

PRESETS = ("experiment", "sweep")  # config groups of `# @package _global_` presets, in the order they merge


def _resolver(overrides, exclude=None, *, _root_=None) -> str:
    def plain(x):
        return OmegaConf.to_container(x) if OmegaConf.is_config(x) else (x or [])

    overrides, exclude = [str(o) for o in plain(overrides)], plain(exclude)
    swept = OmegaConf.select(_root_, "hydra.sweeper.params", default=None) if _root_ is not None else None
    stated = {o for o in stated_defaults(overrides) if o.partition("=")[0] not in (swept or {})}
    name = run_id([o for o in overrides if o not in stated], exclude)
    if stated and _root_ is not None:  # a folder named by the old rule (stated defaults counted) is kept
        old = run_id(overrides, exclude)
        sweep_dir = Path(str(OmegaConf.select(_root_, "hydra.sweep.dir", default=".")))
        if (sweep_dir / old).is_dir() and not (sweep_dir / name).is_dir():
            return old
    return name


def stated_defaults(overrides: list[str]) -> set[str]:
    """The overrides `group=option` that choose the option the defaults lists choose anyway (with the command's
    presets): they change nothing in the config."""
    presets = tuple(o.partition("=")[::2] for o in overrides if o.partition("=")[0] in PRESETS)
    defaults = default_choices(presets)
    return {o for o in overrides if "=" in o and defaults.get(o.partition("=")[0]) == o.partition("=")[2]}


@functools.lru_cache(maxsize=64)
def default_choices(presets: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """group -> the option conf/config.yaml's defaults list chooses, after the presets' `override /group: option`."""
    from bench.sweeps.preflight import CONF_DIR

    choices = {}
    for entry in _defaults(CONF_DIR / "config.yaml"):
        if isinstance(entry, dict):
            choices.update({str(g): str(o) for g, o in entry.items() if o and not str(g).startswith("override ")})
    for group, option in presets:
        choices.update(_preset_overrides(CONF_DIR / group, option))
    return choices


def _preset_overrides(folder: Path, option: str) -> dict[str, str]:
    """The `override /group: option` entries of a preset and of the presets of its group it extends (theirs first)."""
    out: dict[str, str] = {}
    for entry in _defaults(folder / f"{option}.yaml"):
        if isinstance(entry, str) and entry != "_self_":  # another preset of the same group, merged first
            out.update(_preset_overrides(folder, entry))
        elif isinstance(entry, dict):
            for key, value in entry.items():
                if str(key).startswith("override /"):
                    out[str(key).removeprefix("override /")] = str(value)
    return out


def _defaults(path: Path) -> list:
    try:
        return list((yaml.safe_load(path.read_text()) or {}).get("defaults") or [])
    except (OSError, yaml.YAMLError, AttributeError):
        return []


def register_resolver() -> None:
    """${run_id:OVERRIDES,EXCLUDE_KEYS} for hydra.sweep.subdir (idempotent)."""
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _resolver)


register_resolver()
