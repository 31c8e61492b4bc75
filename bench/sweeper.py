"""The validating sweeper (hydra/sweeper=validating, this app's default): Hydra's BasicSweeper, whose grid it
expands with Hydra's own code (every override syntax: lists, range, choice, glob; from hydra.sweeper.params in a
preset and from the command line), and which composes and checks every point (bench.preflight.check_point: values,
data, run folder) before the first launch. A bad point stops the sweep with one line naming the point and the key;
nothing is trained. Hydra's BasicSweeper only composes each batch just before launching it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import filter_overrides
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

from bench.config import ConfigError
from bench.preflight import check_duplicates, check_point, compose_error, run_dir

log = logging.getLogger(__name__)


def point_name(point: Sequence[str], grid: Sequence[Sequence[str]]) -> str:
    """The overrides that tell this point from the others of the grid (all of them for a one-point grid)."""
    varying = [o for o in point if len(grid) == 1 or any(o not in other for other in grid)]
    return " ".join(filter_overrides(varying or list(point)))


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

    def grid(self, arguments: Sequence[str]) -> list[list[str]]:
        """Every point of the sweep, in launch order, as BasicSweeper expands it."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        return [point for batch in self.split_arguments(overrides, None) for point in batch]

    def check(self, grid: Sequence[Sequence[str]]) -> None:
        """Compose and check every point; ConfigError naming the first bad one."""
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        self.run_dirs = {}
        for i, point in enumerate(grid):
            try:
                try:
                    cfg = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(point))
                except Exception as e:
                    raise compose_error(e) from e
                check_point(cfg)
                self.run_dirs[tuple(point)] = run_dir(cfg)
            except ConfigError as e:
                raise ConfigError(f"point {i + 1} of {len(grid)} ({point_name(point, grid)}): {e}") from e
        if problem := changed_preset(self.config):  # after the points: a bad value is the more useful line
            raise ConfigError(problem)

    def checked_grid(self, arguments: Sequence[str]) -> list[list[str]]:
        check_duplicates(arguments)  # a key twice on the command line (a preset's params are overridden, not doubled)
        grid = self.grid(arguments)
        self.check(grid)
        log.info("checked the %d points of the sweep", len(grid))
        return grid

    def sweep(self, arguments: list[str]):
        self.checked_grid(arguments)  # the whole grid, before anything is launched
        return super().sweep(arguments)

    def validate_batch_is_legal(self, batch) -> None:
        """Nothing left to do: sweep() checked every point before the first launch."""
