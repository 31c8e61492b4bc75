"""Check a command line before Hydra launches anything: every grid point must compose and validate.

A wrong group option, key, type or value in any point of a sweep, a key given twice, a run folder that holds a run
of another config (bench/identity.py), or logger.mode=online without wandb credentials or network is reported as
one line, and the process exits with status 2 before any run starts.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config import ConfigError, one_line, validate
from bench.data import check_available
from bench.identity import check_run_folder, run_folder
from bench.logger import online_problem

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
    check_duplicates(args.overrides)
    if args.config_dir:  # --config-dir: presets of one's own, searched first as Hydra does
        args.overrides = [*args.overrides, f"hydra.searchpath=[file://{Path(args.config_dir).resolve()}]"]
    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        try:
            points = _points(config_name, args.overrides) if args.multirun else [args.overrides]
        except HydraException as e:
            raise ConfigError(one_line(e)) from e
        online = None
        for overrides in points:
            typed = validate(_compose(config_name, overrides))
            check_available(typed.dataset)  # a missing dataset is one line too, before anything runs
            if typed.logger.name == "wandb" and typed.logger.mode == "online":
                online = typed.logger
        if online is not None and (problem := online_problem(online)):
            raise ConfigError(problem)  # once, not after a timeout in every point
        check_folders(config_name, args.overrides, args.multirun)


def one_line_failure(e: Exception) -> str | None:
    """The one line a single run's user sees for bad input (ConfigError) or the machine's failure (disk full,
    read-only folder); None for other failures (Hydra shows their traceback) and inside a sweep (its other points go
    on; the launcher reports the failed ones)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from bench.store import StorageError

    if not isinstance(e, (ConfigError, StorageError)):
        return None
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return None
    return str(e)


def check_writable(folder: Path) -> None:
    """The run folder, or the nearest existing folder above it, accepts new files (a read-only filesystem, or a
    folder without write permission for a non-root user, is one line here rather than a failure in Hydra)."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise ConfigError(f"{folder}: the output folder is read-only or not writable; choose another one")


def check_duplicates(overrides: list[str]) -> None:
    """A key given twice on one command line: Hydra would keep the last silently."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(one_line(e)) from e
    seen: dict[str, str] = {}
    for o in parsed:
        key = o.key_or_group
        if key in seen:
            raise ConfigError(f"{key} is given twice ({seen[key]} and {o.input_line}): keep one")
        seen[key] = o.input_line


def check_folders(config_name: str, overrides: list[str], multirun: bool) -> None:
    """Every point's run folder holds no run, or a run of the same identity (force=true replaces it)."""
    if not multirun:
        cfg = _compose(config_name, overrides, hydra_config=True)
        check_writable(run_folder(cfg, multirun=False))
        check_run_folder(run_folder(cfg, multirun=False), cfg)
        return
    parsed = OverridesParser.create().parse_overrides(overrides)
    hydra_overrides = [o.input_line for o in parsed if o.is_hydra_override()]
    task = [o.input_line for o in parsed if not o.is_hydra_override()]
    base = _compose(config_name, [o.input_line for o in parsed if not o.is_sweep_override()], hydra_config=True)
    check_writable(Path(str(base.hydra.sweep.dir)))
    if not Path(str(base.hydra.sweep.dir)).is_dir():
        return  # a new sweep folder: nothing to reuse
    for point in sweep_points(base, task):
        cfg = _compose(config_name, hydra_overrides + point, hydra_config=True)
        check_run_folder(run_folder(cfg, multirun=True), cfg)


def sweep_points(hydra_cfg, task_overrides: list[str]) -> list[list[str]]:
    """The task overrides of every job, as Hydra's BasicSweeper makes them (the preset's hydra.sweeper.params, then
    the command line's, expanded into their product)."""
    params = [f"{k}={v}" for k, v in (OmegaConf.select(hydra_cfg, "hydra.sweeper.params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + task_overrides)
    return [list(point) for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]
