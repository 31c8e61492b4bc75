"""A run's identity: what its results depend on, so that a folder is resumed or skipped only by the same config.

`run_identity(cfg)` (bench/runfolder.py, torch-free, shared with analysis) is a hash of the resolved config less
the keys that do not change results (`NON_RESULT_KEYS`,
the same list as conf/config.yaml's hydra.job.config.override_dirname.exclude_keys, which names the sweep folders;
a test keeps the two equal). Numbers are compared as values (1 and 1.0 are the same rate). The identity of a folder
is computed from its config.yaml, so folders written before identities existed are checked too; result.json and
checkpoint.pt also carry it ("run_identity").

`check_run_folder(run_dir, cfg)` refuses, in one line naming the folder and the keys that differ (old -> new), to
run a config in a folder that holds a run of another config: resuming its checkpoint or skipping its result would
mix configs silently. force=true replaces that run instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.config import ConfigError
from bench.runfolder import NON_RESULT_KEYS, RUN_FILES, result_keys, run_identity  # noqa: F401  (the contract)
from bench.runfolder import canonical as _canonical  # noqa: F401

SHOWN = 4  # differing keys named in the message; the rest are counted


class IdentityMismatch(ConfigError):
    """The run folder holds a run of another config."""


def folder_config(run_dir: Path) -> dict | None:
    """The result keys of the run recorded in run_dir/config.yaml (None: no readable config.yaml)."""
    path = Path(run_dir) / "config.yaml"
    try:
        return result_keys(OmegaConf.load(path))
    except Exception:  # missing or unreadable: the folder's other files decide
        return None


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every key whose value differs (absent keys shown as <none>)."""
    a, b = _flat(old), _flat(new)
    keys = sorted(set(a) | set(b))

    def show(tree: dict, key: str) -> str:
        if key not in tree:
            return "<none>"
        v = tree[key]
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    return [f"{k}: {show(a, k)} -> {show(b, k)}" for k in keys if a.get(k, ...) != b.get(k, ...)]


def _stored_identity(run_dir: Path) -> str | None:
    """run_identity from result.json, for a folder without a readable config.yaml."""
    try:
        return json.loads((Path(run_dir) / "result.json").read_text()).get("run_identity")
    except Exception:
        return None


def holds_run(run_dir: Path) -> bool:
    return any((Path(run_dir) / name).exists() for name in RUN_FILES)


def mismatch(run_dir: Path, cfg: DictConfig | dict) -> str | None:
    """Why the run in run_dir is not this config's (one line), or None when it is or the folder holds no run."""
    run_dir = Path(run_dir)
    if not holds_run(run_dir):
        return None
    new = result_keys(cfg)
    old = folder_config(run_dir)
    if old is not None:
        if run_identity(old) == run_identity(new):
            return None
        diffs = differences(old, new)
        shown = ", ".join(diffs[:SHOWN]) + (f" and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else "")
    else:
        stored = _stored_identity(run_dir)
        if stored == run_identity(new):
            return None
        shown = "its config.yaml is missing or unreadable"
    return (
        f"{run_dir} holds a run of another config ({shown}): use a new folder (hydra.run.dir=..., or "
        f"hydra.sweep.dir=... for a sweep), or force=true to replace that run"
    )


def check_run_folder(run_dir: Path, cfg: DictConfig | dict) -> None:
    """Raise IdentityMismatch unless force=true, the folder holds no run, or its run has this config's identity."""
    force = cfg.get("force", False) if isinstance(cfg, dict) else OmegaConf.select(cfg, "force", default=False)
    if force:
        return
    why = mismatch(run_dir, cfg)
    if why is not None:
        raise IdentityMismatch(why)


def run_folder(cfg: DictConfig, multirun: bool) -> Path:
    """The folder Hydra will give this point (cfg composed with its hydra node): hydra.sweep.dir/hydra.sweep.subdir
    in a multirun, hydra.run.dir otherwise."""
    if multirun:
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    return Path(str(cfg.hydra.run.dir))
