"""What tests share besides fixtures (tests/conftest.py): the overrides of a tiny run, the comparison of two runs'
result files, and the environment of a subprocess that runs this checkout."""

from __future__ import annotations

import json
import os
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
