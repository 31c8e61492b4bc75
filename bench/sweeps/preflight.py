"""Pre-launch checks of one run: `check_point(cfg)` is called for every point of a sweep before the first launch
(the validating sweeper, hydra_plugins/warmup_bench) and for a single run before Hydra makes its folder (the
Preflight callback). A wrong key, type or value, or a dataset that is not on disk, is one line (ConfigError).

`check_command(argv)` runs the same checks for a command line without launching anything (tests, dry runs), through
Hydra's own composition and the sweeper the command would use.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from bench.config import one_line, validate
from bench.data import check_available
from bench.errors import ConfigError
from bench.optim.warmup import plugin_problem
from bench.runfolder import point_folder
from bench.runfolder.check import check_run_folder


def _conf_dir() -> Path:
    """The configs: bench/conf/ in an installed package (setup.py copies the top-level conf/ there when it builds a
    wheel), else conf/ beside bench/ (a checkout, an editable install). The packaged copy comes first: beside an
    installed bench, ../conf is site-packages/conf, which is not ours."""
    here = Path(__file__).resolve().parent.parent  # bench/
    packaged = here / "conf"
    return packaged if (packaged / "config.yaml").is_file() else here.parent / "conf"


CONF_DIR = _conf_dir()


def task_config(cfg: DictConfig) -> DictConfig:
    """The run's own config: the composed config less its hydra node (what the task function receives)."""
    task = copy.deepcopy(cfg)
    if "hydra" in task:
        with read_write(task), open_dict(task):
            del task["hydra"]
    return task


def run_dir(cfg: DictConfig) -> Path | None:
    """The run's folder (bench.runfolder.point_folder), or None when only its job knows it (a folder named after
    ${hydra.job.id}) or cfg has no hydra node."""
    try:
        return point_folder(cfg)
    except Exception:
        return None


def check_point(cfg: DictConfig, task: DictConfig | None = None) -> Path | None:
    """Raise ConfigError (one line) if this run would not start: a key given twice, its values (bench.config), its
    data, wandb online without credentials or network, an output folder that cannot be written, or a folder that
    holds a run of another config (bench/runfolder/check.py). Returns the run's folder (None: known only to its job).
    `task`: a sweep's point as the sweeper composed it (its task config, one override per key by construction)."""
    if task is None:
        check_duplicates(OmegaConf.select(cfg, "hydra.overrides.task") or [])
        task = task_config(cfg)
    typed = validate(task)
    check_available(typed.dataset)  # DataMissing is a ConfigError: where to put the files, how to fetch them
    if typed.logger.name == "wandb" and typed.logger.mode == "online":
        if problem := _online_problem(*(os.environ.get(k) for k in ("WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"))):
            raise ConfigError(problem)
    if folder := run_dir(cfg):
        check_writable(folder)
        check_run_files(folder)
        check_run_folder(folder, task)
    return folder


@functools.lru_cache(maxsize=8)
def _online_problem(*environment) -> str | None:
    """bench.logger.online_problem, once per environment: a sweep asks the network once, not once a point."""
    from bench.logger import online_problem

    return online_problem(None)


def check_duplicates(overrides) -> None:
    """A key given twice on one command line: Hydra would keep the last silently."""
    try:
        parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides])
    except HydraException as e:
        raise ConfigError(one_line(e)) from e
    seen: dict[str, str] = {}
    for o in parsed:
        key = o.key_or_group
        if key in seen:
            raise ConfigError(f"{key} is given twice ({seen[key]} and {o.input_line}): keep one")
        seen[key] = o.input_line


def check_writable(folder: Path) -> None:
    """The run folder, or the nearest existing folder above it, accepts new files (a read-only filesystem, or a
    folder without write permission for a non-root user, is one line here rather than a failure in Hydra)."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():  # the output folder, or a folder above it, is a file
        raise ConfigError(f"{folder}: is a file, not a folder; choose another output folder")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{folder}: the output folder is read-only or not writable; choose another one")


def check_run_files(folder: Path) -> None:
    """The run's own files, where they exist, are files: a folder named run.lock or checkpoint.pt would fail the run
    later with a traceback."""
    from bench.runfolder import CHECKPOINT, CONFIG, LOCK, METRICS, RESULT

    for name in (LOCK, CHECKPOINT, RESULT, CONFIG, METRICS):
        path = folder / name
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path}: is a folder, not the run's file; remove it or choose another output folder")


def one_line_failure(e: Exception) -> str | None:
    """The one line a single run's user sees for bad input (ConfigError) or the machine's failure (disk full,
    read-only folder); None for other failures (Hydra shows their traceback) and inside a sweep (its other points go
    on; the launcher reports the failed ones)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from bench.checkpoint import CheckpointError
    from bench.runfolder import StorageError

    if not isinstance(e, (ConfigError, StorageError, CheckpointError)):
        return None
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return None
    return str(e)


# Hydra plugins the app works with but does not install by default: the option's install command
OPTIONAL_PLUGINS = {
    "hydra/sweeper/optuna": "pip install -c constraints.txt -e '.[optuna]' (or: pip install hydra-optuna-sweeper)",
    "hydra/sweeper/nevergrad": "pip install hydra-nevergrad-sweeper",
    "hydra/sweeper/ax": "pip install hydra-ax-sweeper",
}


def explain(e: Exception) -> str:
    """Hydra's composition errors in one line naming the override."""
    msg = one_line(e)
    if isinstance(e, OverrideParseException):  # Hydra's grammar: the message does not say which override
        return _unparsable(e.override, msg)
    if "Could not find" in msg and "'" in msg:  # "In 'config': Could not find 'model/nope'"
        missing = msg.split("Could not find", 1)[1].strip().split("'")[1]
        group, _, option = missing.rpartition("/")
        if hint := OPTIONAL_PLUGINS.get(missing):  # a Hydra plugin the environment lacks
            return f"{group}={option}: not installed; install it with: {hint}"
        opts = _options(group)
        return f"{group}={option}: no such option" + (f" (available: {', '.join(opts)})" if opts else "")
    cause = e.__cause__
    if msg.startswith("Error merging override") and cause is not None:  # a wrong type
        return f"{msg.removeprefix('Error merging override').strip()}: {one_line(cause).split(': ', 1)[-1]}"
    if msg.startswith("Multiple values for ") and "'override " in msg:  # +experiment=NAME: the group is in defaults
        group, option = msg.split("'override ", 1)[1].rstrip("'.").split(": ", 1)
        return f"+{group}={option}: {group} is in the defaults list already; choose it without '+': {group}={option}"
    if msg.startswith("Could not override"):  # a key the config does not have
        key = msg.split("'")[1]
        return f"{key}: no such key in the config (check the spelling; '+{key}=...' adds a new one)"
    lines = str(e).strip().splitlines()
    if msg.endswith(":") and len(lines) > 1:  # "In 'preset': ConfigKeyError raised while composing config:\nKey ..."
        return f"{msg} {lines[1].strip()}"
    return msg


def _unparsable(override: str, msg: str) -> str:
    key, _, value = override.partition("=")
    odd = sorted({c for c in value if not c.isascii() or c.isspace()})
    if odd:  # an unquoted path or name with characters outside the grammar (e.g. non-ASCII)
        return f"{override}: Hydra reads {''.join(odd)!r} only in a quoted value: '{key}=\"{value}\"'"
    return f"{override}: not a valid override ({msg.removeprefix('LexerNoViableAltException: ')})"


def _options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return (
        sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml"))
        if folder.is_dir()
        else []
    )


def compose_error(e: Exception) -> ConfigError:
    """A ConfigError for a Hydra / OmegaConf composition error (other exceptions: as they are)."""
    if isinstance(e, ConfigError):
        return e
    if isinstance(e, (HydraException, OmegaConfBaseException)):
        return ConfigError(plugin_problem() or explain(e))  # a broken plugin's missing schema: the plugin is why
    raise e


def check_command(argv: list[str], config_dir: Path = CONF_DIR, config_name: str = "config") -> int:
    """Check `python launch.py ARGV` as the launch would, launching nothing; returns the number of runs checked.
    Raises ConfigError (one line) for the first bad point."""
    with composed_command(argv, config_dir, config_name) as (cfg, sweeper):
        if sweeper is None:
            check_point(cfg)
            return 1
        task = OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False)
        return len(sweeper.checked_grid(task))


@contextlib.contextmanager
def composed_command(argv: list[str], config_dir: Path = CONF_DIR, config_name: str = "config"):
    """(cfg, sweeper) of `python launch.py ARGV`: its composed config and, for a multirun (-m), the sweeper it would
    use, set up (its launcher too); sweeper None for a single run. Hydra's global state is set inside the block."""
    from hydra import initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext, RunMode

    multirun = "-m" in argv or "--multirun" in argv
    overrides = [a for a in argv if a not in ("-m", "--multirun")] + [f"hydra.mode={'MULTIRUN' if multirun else 'RUN'}"]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        mode = RunMode.MULTIRUN if multirun else RunMode.RUN
        try:
            cfg = loader.load_configuration(config_name, overrides, run_mode=mode)
        except Exception as e:
            raise compose_error(e) from e
        if not multirun:
            yield cfg, None
            return
        sweeper = Plugins.instance().instantiate_sweeper(
            config=cfg, hydra_context=HydraContext(config_loader=loader, callbacks=Callbacks()), task_function=None
        )
        yield cfg, sweeper
