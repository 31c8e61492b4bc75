"""The validating sweeper (hydra/sweeper=validating, this app's default): Hydra's BasicSweeper, whose grid it
expands with Hydra's own code (every override syntax: lists, range, choice, glob; from hydra.sweeper.params in a
preset and from the command line), and which composes and checks every point (bench.sweeps.preflight.check_point: values,
data, run folder) before the first launch. A bad point stops the sweep with one line naming the point and the key;
nothing is trained. Hydra's BasicSweeper only composes each batch just before launching it.

The check says how many points it checks (a progress bar on a terminal for big grids) and costs a few ms a point
(Composer: Hydra composes once per combination of config-group choices); the launcher still composes each point
again, as Hydra does. A sweep with a failed point, or stopped by a signal, ends with one line (bench.sweeps.summary).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf, read_write

from bench.errors import ConfigError
from bench.sweeps.lock import check_complete
from bench.sweeps.preflight import check_duplicates, check_point, compose_error, task_config
from bench.runfolder.store import save_config
from bench.sweeps.summary import SweepEnded, outcomes, summary

log = logging.getLogger(__name__)

MAX_POINTS = 100_000  # a bigger grid is refused up front (its check alone would take over five minutes)
PROGRESS_FROM = 200  # points: a grid this big shows the check's progress on a terminal


def point_name(point: Sequence[str], grid: Sequence[Sequence[str]]) -> str:
    """The overrides that tell this point from the others of the grid (all of them for a one-point grid)."""
    varying = [o for o in point if len(grid) == 1 or any(o not in other for other in grid)]
    return " ".join(filter_overrides(varying or list(point)))


def grid_size(overrides: Sequence[Override]) -> int:
    """The number of points of a grid, before it is expanded; ConfigError for an axis that has no values (an empty
    range) or cannot be expanded (a range with step 0), naming it."""
    size = 1
    for o in overrides:
        if not (o.is_sweep_override() and o.is_discrete_sweep()):
            continue
        try:
            n = sum(1 for _ in o.sweep_string_iterator())
        except Exception as e:  # Python's range(): "arg 3 must not be zero"
            raise ConfigError(f"{o.input_line}: {e}") from None
        if n == 0:
            raise ConfigError(f"{o.input_line}: sweeps no values (an empty grid)")
        size *= n
    return size


class Composer:
    """Each point's config as Hydra's load_sweep_config composes it, for a few ms a point: Hydra composes once per
    combination of the point's config-group choices and hydra.* overrides (what shapes the config); each point then
    applies its value overrides to that composition's task config with Hydra's own override code (the same types,
    checks and errors), and its hydra node gets the point's task overrides (its run folder's name) and
    override_dirname, as Hydra sets them. A point that sets the same keys as the one before, each to a plain value
    (every point of a grid does), is applied in place of the previous values; any other starts from a copy of the
    composition. tests/test_sweeper_check.py compares it with load_sweep_config."""

    def __init__(self, loader, master: DictConfig) -> None:
        self.loader, self.master = loader, master
        self.parser = OverridesParser.create(config_loader=loader)
        self.bases: dict[tuple[str, ...], Base] = {}
        self.overrides: dict[str, Override] = {}

    def parsed(self, override: str) -> Override:
        """Hydra's parse of one override, once per text (a grid repeats each value across many points)."""
        if override not in self.overrides:
            (self.overrides[override],) = self.parser.parse_overrides([override])
        return self.overrides[override]

    def shapes(self, o: Override) -> bool:
        """A config-group choice (Hydra's defaults list; a dict value is a value override there too) or hydra.*."""
        is_group = self.loader.repository.group_exists(o.key_or_group) and not isinstance(o.value(), dict)
        return o.is_hydra_override() or is_group

    def __call__(self, point: Sequence[str]) -> tuple[DictConfig, DictConfig]:
        """(cfg, task) of the point; both are shared with the points of the same composition: valid until the next
        call."""
        parsed = [self.parsed(o) for o in point]
        choices = tuple(o.input_line for o in parsed if self.shapes(o))
        if choices not in self.bases:
            cfg = self.loader.load_sweep_config(self.master, list(choices))
            self.bases[choices] = Base(cfg, task_config(cfg))
        base = self.bases[choices]
        base.apply([o for o in parsed if not self.shapes(o)])
        app = [o for o in parsed if not o.is_hydra_override()]
        cfg = base.cfg
        dirname = cfg.hydra.job.config.override_dirname
        with read_write(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in app]
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=app, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
            )
        return cfg, base.task


class Base:
    """One composition of a grid's points: its config (with the hydra node), its task config as composed, and the
    task config the last point's value overrides were applied to (`keys`: those overrides' keys, None: start anew)."""

    def __init__(self, cfg: DictConfig, task: DictConfig) -> None:
        self.cfg, self.composed = cfg, task
        self.task, self.keys = task, None

    def apply(self, overrides: list[Override]) -> None:
        keys = tuple(o.key_or_group for o in overrides)
        plain = all(not (o.is_add() or o.is_delete() or o.is_force_add()) for o in overrides) and all(
            not isinstance(o.value(), (dict, list)) for o in overrides
        )
        if not (plain and keys == self.keys):  # the previous point's values would not all be replaced: a copy
            self.task = copy.deepcopy(self.composed)
        self.keys = None  # until the overrides are applied
        ConfigLoaderImpl._apply_overrides_to_config(overrides, self.task)
        self.keys = keys if plain else None


class Points:
    """The sweeper's launcher: the launcher chosen (hydra/launcher), whose JobReturns it keeps for the summary.
    Hydra's basic launcher gets one point at a time, so that a point whose folder the machine refuses before its task
    starts (a full disk when Hydra writes .hydra/config.yaml) fails alone and the sweep goes on."""

    def __init__(self, launcher, on_fault) -> None:
        self.launcher, self.on_fault = launcher, on_fault
        self.returns: list[JobReturn] = []

    def __getattr__(self, name: str):
        return getattr(self.launcher, name)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        if _is_basic(self.launcher):
            basic = logging.getLogger(type(self.launcher).__module__)
            basic.info("Launching %d jobs locally", len(job_overrides))
            basic.addFilter(_one_job_at_a_time)
            try:
                returns = [self._one(point, initial_job_idx + i) for i, point in enumerate(job_overrides)]
            finally:
                basic.removeFilter(_one_job_at_a_time)
        else:
            returns = list(self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx))
        self.returns += returns
        return returns

    def _one(self, point: Sequence[str], idx: int) -> JobReturn:
        from bench.runfolder import StorageError

        try:
            return self.launcher.launch([point], initial_job_idx=idx)[0]
        except StorageError as e:
            log.error("%s: %s", " ".join(filter_overrides(point)), e)
            self.on_fault(point, e)
            return JobReturn(overrides=list(point), status=JobStatus.FAILED, _return_value=e)


def _one_job_at_a_time(record: logging.LogRecord) -> bool:
    """The basic launcher's "Launching 1 jobs locally", once a point: said once for all of them."""
    return record.getMessage() != "Launching 1 jobs locally"


def _is_basic(launcher) -> bool:
    """Hydra's basic launcher (by name: Hydra re-executes its core plugins on a rescan, making a new class)."""
    cls = type(launcher)
    return f"{cls.__module__}.{cls.__qualname__}" == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


PRESETS = ("sweep", "experiment")  # the preset groups: choosing one is not a change of its grid


def changed_preset(config, study: bool = False) -> str | None:
    """One line when the command line changes a preset's grid (a key that changes results), or an optimizing sweeper
    runs a `study` over it, but keeps the preset's own folder: the trial's points would land among the preset's
    results. Choosing a folder (name=, hydra.sweep.dir=) is fine."""
    name = OmegaConf.select(config, "name", default="")
    task = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    chosen = [
        o for o in [*task, *(config.hydra.overrides.hydra or [])] if o.split("=")[0] in ("name", "hydra.sweep.dir")
    ]
    if not name or chosen:
        return None
    exclude = set(OmegaConf.select(config, "hydra.job.config.override_dirname.exclude_keys", default=[]) or [])
    changes = [o for o in task if o.split("=")[0].lstrip("+~") not in (*PRESETS, *exclude)]
    if not changes and not study:
        return None
    change = f"a study of {str(config.hydra.sweeper._target_).rsplit('.', 1)[-1]}" if study else " ".join(changes)
    return (
        f"{change} changes the grid of the preset {name!r}, whose results are in {config.hydra.sweep.dir}: "
        "give the trial a folder of its own with name=NAME (outputs/sweeps/NAME) or hydra.sweep.dir=DIR"
    )


class ValidatingSweeper(BasicSweeper):
    run_dirs: dict[tuple[str, ...], object]  # point -> its run folder, from the check
    checked: bool  # every point checked: what fails now is a point's run, counted in the summary

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        # BasicSweeper.__init__ calls super(BasicSweeper, self): after a plugin rescan (a Hydra singleton reset)
        # Hydra re-executes its core plugins, that name is then another class and the call fails. Its fields:
        Sweeper.__init__(self)
        self.overrides = None
        self.batch_index = 0
        self.max_batch_size = max_batch_size
        self.params = params or {}
        self.hydra_context = None
        self.config = None
        self.launcher = None
        self.run_dirs, self.checked, self.checking = {}, False, (0, 0)

    def setup(self, **kwargs) -> None:
        super().setup(**kwargs)
        self.launcher = Points(self.launcher, self._record_fault)

    def grid(self, arguments: Sequence[str]) -> list[list[str]]:
        """Every point of the sweep, in launch order, as BasicSweeper expands it; ConfigError for an empty grid, an
        axis that cannot be expanded, or a grid over MAX_POINTS."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        if (size := grid_size(overrides)) > MAX_POINTS:
            raise ConfigError(f"the grid has {size} points, over the {MAX_POINTS} one sweep checks: split it")
        return [point for batch in self.split_arguments(overrides, None) for point in batch]

    def check(self, grid: Sequence[Sequence[str]]) -> None:
        """Compose and check every point; ConfigError naming the first bad one."""
        from bench.progress import interactive, progress_bar

        assert self.hydra_context is not None and self.config is not None
        compose = Composer(self.hydra_context.config_loader, self.config)
        self.run_dirs, self.checked = {}, False
        log.info("checking the %d points of the sweep", len(grid))
        bar = progress_bar(len(grid), unit="point", show=interactive() and len(grid) >= PROGRESS_FROM)
        with bar:
            for i, point in enumerate(grid):
                self.checking = (i + 1, len(grid))
                try:
                    try:
                        cfg, task = compose(point)
                    except Exception as e:
                        raise compose_error(e) from e
                    self.run_dirs[tuple(point)] = check_point(cfg, task)
                except ConfigError as e:
                    raise ConfigError(f"point {i + 1} of {len(grid)} ({point_name(point, grid)}): {e}") from e
                bar.update()
        if problem := changed_preset(self.config):  # after the points: a bad value is the more useful line
            raise ConfigError(problem)
        self.checked = True

    def checked_grid(self, arguments: Sequence[str]) -> list[list[str]]:
        check_duplicates(arguments)  # a key twice on the command line (a preset's params are overridden, not doubled)
        grid = self.grid(arguments)
        self.check(grid)
        log.info("checked the %d points of the sweep", len(grid))
        return grid

    def sweep(self, arguments: list[str]):
        """BasicSweeper's sweep, less its end: a failed point does not stop the sweep (the summary counts it)."""
        assert self.config is not None and self.launcher is not None
        grid = self.checked_grid(arguments)  # the whole grid, before anything is launched
        save_config(self.config, "multirun.yaml", Path(str(self.config.hydra.sweep.dir)))  # Hydra's record, atomic
        size = self.max_batch_size or max(1, len(grid))
        returns = []
        for start in range(0, len(grid), size):
            returns.append(self.launcher.launch(grid[start : start + size], initial_job_idx=start))
        check_complete(returns)  # points skipped as running elsewhere: counted on the console, not complete
        return returns

    def validate_batch_is_legal(self, batch) -> None:
        """Nothing left to do: sweep() checked every point before the first launch."""

    def _record_fault(self, point: Sequence[str], e: Exception) -> None:
        """A failed result.json for a point the machine refused before its run started (when the disk allows)."""
        from bench.failure import describe_failure
        from bench.runfolder import StorageError
        from bench.runfolder.store import RunStore

        if (folder := self.run_dirs.get(tuple(point))) is None:
            return
        try:
            RunStore(Path(str(folder))).write_result({"status": "failed", **describe_failure(e)})
        except StorageError:
            pass


class Summarized:
    """A sweeper (mixed in before ValidatingSweeper or a subclass: hydra_plugins/warmup_bench) whose sweep ends in one
    line when a point failed or a signal stopped it: SweepEnded with the summary of its points (bench.sweeps.summary)."""

    def sweep(self, arguments: list[str]):
        try:
            returns = super().sweep(arguments)  # type: ignore[misc]
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM to the local launcher (bench.sweeps.launcher)
            raise SweepEnded(self._stopped(str(e) or "Ctrl-C")) from None
        except Exception:  # the boundary search ends so when a run failed
            if not self.checked or not self._outcomes()["failed"]:  # a bad point, or a bug: as it is
                raise
            raise SweepEnded(f"error: the sweep ended with failed points: {self.summary()}") from None
        line = self.summary()
        log.info("sweep: %s", line)
        if self._outcomes()["failed"]:
            raise SweepEnded(f"error: the sweep ended with failed points: {line}")
        return returns

    def _stopped(self, why: str) -> str:
        if not self.checked:
            i, n = self.checking
            where = f" while checking point {i} of {n}" if n else ""
            return f"stopped ({why}){where}: nothing was launched"
        return f"stopped ({why}): {self.summary()}; the same command resumes the rest"

    def summary(self) -> str:
        return summary(Path(str(self.config.hydra.sweep.dir)), self._outcomes())

    def _outcomes(self):
        """The grid's points by outcome: each folder's result.json, else this launch's JobReturn (Points keeps them;
        a launcher put in its place, as tests do, may not)."""
        kept = getattr(self.launcher, "returns", [])
        returns = {self.run_dirs.get(tuple(r.overrides or ())): r for r in kept}
        return outcomes(list(self.run_dirs.values()), returns)
