"""Is a folder this config's run? A folder is resumed or skipped only by a config of the same run identity.

`run_identity(cfg)` (bench/runfolder/, torch-free, shared with analysis) is a hash of the resolved config less
the keys that do not change results (`NON_RESULT_KEYS`,
the same list as conf/config.yaml's hydra.job.config.override_dirname.exclude_keys, which names the sweep folders;
a test keeps the two equal). Numbers are compared as values (1 and 1.0 are the same rate). The identity of a folder
is computed from its config.yaml, so folders written before identities existed are checked too; result.json and
checkpoint.pt also carry it ("run_identity").

`check_run_folder(run_dir, cfg)` refuses, in one line naming the folder and the keys that differ (old -> new), to
run a config in a folder that holds a run of another config: resuming its checkpoint or skipping its result would
mix configs silently. force=true replaces that run instead. It also refuses a folder whose result.json's run_identity
is not its config.yaml's (the config edited after the run: the result proves nothing; bench.runfolder.unproven_result)
and, even with force=true, a sweep's folder (multirun.yaml, or run folders inside). device=auto and the device it
resolved to (the one result.json says the run ran on, else this machine's) name the same run: such a command resumes
or skips the folder's run under its own config (same_device_config).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from bench.errors import ConfigError
from bench.runfolder import RUN_FILES, result_keys, run_identity, sweep_evidence, unproven_result

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


def _ran_on(run_dir: Path) -> str:
    """The device type the folder's run resolves device=auto to: the one its result.json says it ran on, else this
    machine's (bench.train.pick_device)."""
    try:
        device = json.loads((Path(run_dir) / "result.json").read_text()).get("device")
    except Exception:
        device = None
    if isinstance(device, str) and device:
        return device.split(":")[0]
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _auto_is(keys: dict, run_dir: Path) -> bool:
    """This config's device is the one device=auto resolves to for the folder's run."""
    return keys.get("device") == _ran_on(run_dir)


def as_folder_device(old: dict, new: dict, run_dir: Path) -> dict:
    """new with the folder's device when the two name the same device (device=auto resolved to the device that ran
    counts as equal to naming it), so that such a config resumes or skips the folder's run."""
    devices = {old.get("device"), new.get("device")}
    if len(devices) == 2 and "auto" in devices and devices - {"auto"} == {_ran_on(run_dir)}:
        return {**new, "device": old.get("device")}
    return new


def same_device_config(run_dir: Path, cfg: DictConfig) -> DictConfig:
    """cfg, with the device of the folder's run when the two name the same device (as_folder_device): the run is then
    the folder's, resumed or skipped under its identity (config.yaml, checkpoint.pt and result.json agree)."""
    old = folder_config(run_dir)
    device = OmegaConf.select(cfg, "device")
    if old is None or "device" not in old or old["device"] == device:
        return cfg
    if as_folder_device(old, {"device": device}, run_dir)["device"] == device:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.device = old["device"]
    return cfg


def holds_run(run_dir: Path) -> bool:
    return any((Path(run_dir) / name).exists() for name in RUN_FILES)


def mismatch(run_dir: Path, cfg: DictConfig | dict) -> str | None:
    """Why the run in run_dir is not this config's (one line), or None when it is or the folder holds no run."""
    run_dir = Path(run_dir)
    if not holds_run(run_dir):
        return None
    new = result_keys(cfg)
    old = folder_config(run_dir)
    if unproven := unproven_result(run_dir):
        shown = unproven
    elif old is not None:
        if run_identity(old) == run_identity(as_folder_device(old, new, run_dir)):
            return None
        diffs = differences(old, new)
        shown = ", ".join(diffs[:SHOWN]) + (f" and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else "")
    else:
        stored = _stored_identity(run_dir)
        auto = {**new, "device": "auto"}
        if stored == run_identity(new) or (stored == run_identity(auto) and _auto_is(new, run_dir)):
            return None
        shown = "its config.yaml is missing or unreadable"
    return (
        f"{run_dir} holds a run of another config ({shown}): use a new folder (hydra.run.dir=..., or "
        f"hydra.sweep.dir=... for a sweep), or force=true to replace that run"
    )


def check_run_folder(run_dir: Path, cfg: DictConfig | dict) -> None:
    """Raise IdentityMismatch for a sweep's folder (even with force=true), and unless force=true, the folder holds no
    run, or its run has this config's identity."""
    if why := sweep_evidence(run_dir):
        raise IdentityMismatch(
            f"{run_dir} is a sweep's folder ({why}): a single run needs a folder of its own (hydra.run.dir=...)"
        )
    force = cfg.get("force", False) if isinstance(cfg, dict) else OmegaConf.select(cfg, "force", default=False)
    if force:
        return
    why = mismatch(run_dir, cfg)
    if why is not None:
        raise IdentityMismatch(why)
