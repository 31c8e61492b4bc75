"""Run identity: a grid point's folder name, derived from its config so that every launch of a sweep finds it again.

`run_id(overrides, exclude)` (bench/runfolder.py) = a readable prefix (the overrides that define the point, short
keys, sorted) and a
short hash of the canonical overrides: `lr=0.5,warmup_steps=64_1f3a9c0e`. The hash makes the name unique however
long the prefix gets (it is cut to stay well under file-name limits), and values are compared as typed, so
`optimizer.lr=1` and `optimizer.lr=1.0` name the same run. Keys that do not change the results (hydra's
`hydra.job.config.override_dirname.exclude_keys`: force, threads, logger, ...) do not count, so rerunning a point with
force=true or more threads lands in the same folder. conf/config.yaml sets
`hydra.sweep.subdir: ${run_id:${hydra.overrides.task},${hydra.job.config.override_dirname.exclude_keys}}`.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from bench.runfolder import MAX_PREFIX, run_id  # noqa: F401  (the contract, shared with analysis)
from bench.runfolder import overrides_identity as identity  # noqa: F401


def _resolver(overrides, exclude=None) -> str:
    def plain(x):
        return OmegaConf.to_container(x) if OmegaConf.is_config(x) else (x or [])

    return run_id(plain(overrides), plain(exclude))


def register_resolver() -> None:
    """${run_id:OVERRIDES,EXCLUDE_KEYS} for hydra.sweep.subdir (idempotent)."""
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _resolver)


register_resolver()
