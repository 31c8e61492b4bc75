"""Run identity: a grid point's folder name, derived from its config so that every launch of a sweep finds it again.

`run_id(overrides, exclude)` = a readable prefix (the overrides that define the point, short keys, sorted) and a
short hash of the canonical overrides: `lr=0.5,warmup_steps=64_1f3a9c0e`. The hash makes the name unique however
long the prefix gets (it is cut to stay well under file-name limits), and values are compared as typed, so
`optimizer.lr=1` and `optimizer.lr=1.0` name the same run. Keys that do not change the results (hydra's
`hydra.job.config.override_dirname.exclude_keys`: force, threads, logger, ...) do not count, so rerunning a point with
force=true or more threads lands in the same folder. conf/config.yaml sets
`hydra.sweep.subdir: ${run_id:${hydra.overrides.task},${hydra.job.config.override_dirname.exclude_keys}}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

MAX_PREFIX = 100  # characters of the readable part (file names may have 255)
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def _excluded(key: str, exclude: Iterable[str]) -> bool:
    return any(key == e or key.startswith(f"{e}.") for e in exclude)


def _canonical(value):
    """Numbers as floats (1 and 1.0 are the same learning rate); containers recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return str(value)


def _shown(value, written: str) -> str:
    """Numbers the same way however they were written (1, 1.0 -> 1; 0.50 -> 0.5); anything else as written."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return written


def identity(overrides: Iterable[str], exclude: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(key, canonical value, value as shown) of the overrides that define the run, sorted by key."""
    exclude = list(exclude or ())
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    out = []
    for o in parsed:
        key = o.key_or_group
        if _excluded(key, exclude):
            continue
        prefix = "~" if o.is_delete() else ""
        value = _canonical(o.value())
        out.append((prefix + key, json.dumps(value, sort_keys=True), _shown(value, o.get_value_element_as_str())))
    return sorted(out)


def run_id(overrides: Iterable[str], exclude: Iterable[str] = ()) -> str:
    """The folder name of the run these task overrides define."""
    ident = identity(overrides, exclude)
    digest = hashlib.sha256("\n".join(f"{k}={v}" for k, v, _ in ident).encode()).hexdigest()[:8]
    readable = ",".join(f"{k.rsplit('.', 1)[-1]}={shown}" for k, _, shown in ident) or "default"
    readable = _UNSAFE.sub("_", readable)[:MAX_PREFIX]
    return f"{readable}_{digest}"


def _resolver(overrides, exclude=None) -> str:
    def plain(x):
        return OmegaConf.to_container(x) if OmegaConf.is_config(x) else (x or [])

    return run_id(plain(overrides), plain(exclude))


def register_resolver() -> None:
    """${run_id:OVERRIDES,EXCLUDE_KEYS} for hydra.sweep.subdir (idempotent)."""
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _resolver)


register_resolver()
