"""Check a command line before Hydra launches anything: every grid point must compose and validate.

A wrong group option, key, type or value in any point of a sweep is reported as one line naming the key, and the
process exits with status 2 before any run starts.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config import ConfigError, one_line, validate
from bench.data import check_available

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _compose(config_name: str, overrides: list[str], hydra_config: bool = False):
    try:
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=hydra_config)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(_explain(e, overrides)) from e


def _explain(e: Exception, overrides: list[str]) -> str:
    msg = one_line(e)
    if msg.startswith("In '") and "Could not find" in msg:  # "In 'config': Could not find 'model/nope'"
        missing = msg.split("Could not find", 1)[1].strip().strip("'")
        group, _, option = missing.rpartition("/")
        opts = _options(group)
        return f"{group}={option}: no such option" + (f" (available: {', '.join(opts)})" if opts else "")
    cause = e.__cause__
    if msg.startswith("Error merging override") and cause is not None:  # a wrong type
        return f"{msg.removeprefix('Error merging override').strip()}: {one_line(cause).split(': ', 1)[-1]}"
    if msg.startswith("Could not override"):  # a key the config does not have
        key = msg.split("'")[1]
        return f"{key}: no such key in the config (check the spelling; '+{key}=...' adds a new one)"
    return msg


def _options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _points(config_name: str, overrides: list[str]) -> list[list[str]]:
    """Override lists to compose: every combination of the group sweeps, with each value of the other sweeps."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = {o.get_key_element(): list(o.sweep_string_iterator()) for o in parsed if o.is_sweep_override()}
    # sweeps declared in a preset's hydra.sweeper.params count too
    hcfg = _compose(config_name, fixed, hydra_config=True)
    for key, values in (OmegaConf.select(hcfg, "hydra.sweeper.params") or {}).items():
        if key not in sweeps:
            sweeps[key] = [v.strip() for v in str(values).split(",")]
    groups = {k: v for k, v in sweeps.items() if "." not in k.lstrip("+~")}
    keys = {k: v for k, v in sweeps.items() if k not in groups}
    points = []
    for combo in itertools.product(*groups.values()) if groups else [()]:
        base = fixed + [f"{k}={v}" for k, v in zip(groups, combo)]
        points.append(base)
        points += [base + [f"{k}={v}"] for k, values in keys.items() for v in values]
    return points


def preflight(argv: list[str]) -> None:
    """Raise ConfigError (one line) if any point of this command line would not run."""
    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion:
        return
    config_name = args.config_name or "config"
    conf_dir = str(Path(args.config_path).resolve()) if args.config_path else str(CONF_DIR)
    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        try:
            points = _points(config_name, args.overrides) if args.multirun else [args.overrides]
        except HydraException as e:
            raise ConfigError(one_line(e)) from e
        for overrides in points:
            cfg = _compose(config_name, overrides)
            check_available(validate(cfg).dataset)  # a missing dataset is one line too, before anything runs
