"""Boundary search (hydra/sweeper=boundary): bisection per row, in rounds, monotone in T_wrm (checked), with the
phase diagram's "trains" rule; a synthetic launcher gives each point a known outcome, a real sweep checks the whole."""

from __future__ import annotations

import copy
import csv
import json

from hydra import initialize_config_dir
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from bench.runfolder import run_identity
from bench.sweeps.preflight import run_dir
from tests.conftest import CONF, multirun

# the demo grid's boundary on main: eta_max per T_wrm
DEMO = {1: 0.125, 16: 1.0, 64: 4.0, 256: 8.0}


class Oracle:
    """A launcher whose runs train exactly when eta <= boundary(T_wrm, seed): writes result.json as a run would."""

    def __init__(self, sweeper, boundary):
        self.sweeper, self.boundary, self.calls, self.trained = sweeper, boundary, [], 0

    def launch(self, batch, initial_job_idx):
        self.calls.append([list(p) for p in batch])
        out = []
        for point in batch:
            cfg = self.sweeper.hydra_context.config_loader.load_sweep_config(self.sweeper.config, list(point))
            folder = run_dir(cfg)
            folder.mkdir(parents=True, exist_ok=True)
            if (folder / "result.json").exists():  # finished: skipped, as bench.run and the launchers do
                out.append(JobReturn(overrides=list(point), status=JobStatus.COMPLETED, _return_value=1.0))
                continue
            self.trained += 1
            ok = cfg.optimizer.lr <= self.boundary(cfg.schedule.warmup_steps, cfg.seed)
            result = {"status": "completed" if ok else "diverged", "final_test_acc": 0.9 if ok else float("nan")}
            result.update(num_classes=10, run_identity=run_identity(cfg))  # this config's run (runfolder.check)
            (folder / "result.json").write_text(json.dumps(result))
            out.append(JobReturn(overrides=list(point), status=JobStatus.COMPLETED, _return_value=1.0))
        return out


# point -> its composed config: the searches here share the demo grid's points, and composing one (~1 CPU-s) is
# what these tests cost; each point is composed by Hydra once per module, then given the search's own sweep folder
COMPOSED: dict[tuple[str, ...], DictConfig] = {}


def compose_once(loader, sweep_dir) -> None:
    """loader.load_sweep_config, composing each distinct point once (for the sweeper's check and the Oracle)."""
    compose = loader.load_sweep_config

    def load_sweep_config(master_config, sweep_overrides):
        key = tuple(sweep_overrides)
        if key not in COMPOSED:
            COMPOSED[key] = compose(master_config, list(sweep_overrides))
        cfg = copy.deepcopy(COMPOSED[key])
        with read_write(cfg), open_dict(cfg):
            cfg.hydra.sweep.dir = str(sweep_dir)
        return cfg

    loader.load_sweep_config = load_sweep_config


def boundary_search(tmp_path, boundary, *overrides: str):
    """The boundary sweeper of `python launch.py -m sweep=demo hydra/sweeper=boundary OVERRIDES`, on an Oracle.
    seed=0 (the default) is written out when OVERRIDES set no seed: its points are then those of seed=0,1's
    searches, composed once (COMPOSED)."""
    seeded = any(o.startswith("seed=") for o in overrides)
    args = ["sweep=demo", "hydra/sweeper=boundary", "hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}", *overrides]
    args += [] if seeded else ["seed=0"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        cfg = loader.load_configuration("config", args, run_mode=RunMode.MULTIRUN)
        compose_once(loader, tmp_path)
        context = HydraContext(config_loader=loader, callbacks=Callbacks())
        sweeper = Plugins.instance().instantiate_sweeper(config=cfg, hydra_context=context, task_function=None)
        oracle = sweeper.launcher = Oracle(sweeper, boundary)
        sweeper.sweep(OmegaConf.to_container(cfg.hydra.overrides.task))
    with (tmp_path / "boundary.csv").open() as f:
        return list(csv.DictReader(f)), oracle


def test_demo_boundary_with_a_fraction_of_the_runs(tmp_path):
    rows, oracle = boundary_search(tmp_path, lambda w, s: DEMO[w])
    assert {int(r["schedule.warmup_steps"]): float(r["eta_max"]) for r in rows} == DEMO
    runs = sum(len(c) for c in oracle.calls)
    assert runs == sum(int(r["runs"]) for r in rows) and runs <= 0.4 * 36, runs
    assert all(len({tuple(p) for p in c}) == len(c) for c in oracle.calls), "no point twice in a round"
    assert len({tuple(p) for c in oracle.calls for p in c}) == runs, "no point run twice"
    assert [r["lower_bound"] for r in rows] == ["False"] * 4 and all(r["monotone_checked"] == "True" for r in rows)


def test_top_of_grid_is_a_lower_bound_and_nothing_trains_is_blank(tmp_path):
    rows, _ = boundary_search(tmp_path, lambda w, s: {1: 0.01, 16: 1.0, 64: 100.0, 256: 100.0}[w])
    got = {int(r["schedule.warmup_steps"]): (r["eta_max"], r["lower_bound"]) for r in rows}
    assert got == {1: ("", "False"), 16: ("1.0", "False"), 64: ("16.0", "True"), 256: ("16.0", "True")}


def test_every_seed_must_train_and_seed_by_seed_stops_a_cell_at_its_first_failing_seed(tmp_path):
    """Every seed must train: seed 0 trains up to twice seed 1's boundary, eta_max is seed 1's. Seeds run one per
    round, and a seed that fails ends its cell: the cell is decided, the other seeds are not run; the same eta_max
    as running the seeds together, with fewer runs."""
    boundary = lambda w, s: DEMO[w] * (2 if s == 0 else 1)  # noqa: E731  (seed 1 fails first)
    rows, oracle = boundary_search(tmp_path / "one", boundary, "seed=0,1")
    assert {int(r["schedule.warmup_steps"]): float(r["eta_max"]) for r in rows} == DEMO
    together, oracle_together = boundary_search(
        tmp_path / "all", boundary, "seed=0,1", "hydra.sweeper.seed_by_seed=false"
    )
    assert [r["eta_max"] for r in together] == [r["eta_max"] for r in rows]
    cell = lambda p: tuple(o for o in p if not o.startswith("seed="))  # noqa: E731
    for call in oracle.calls:
        assert len({cell(p) for p in call}) == len(call), "one seed of a cell per round"
    outcomes: dict[tuple, list[bool]] = {}  # cell -> its seeds' outcomes, in the order they ran
    for p in (p for call in oracle.calls for p in call):
        values = dict(o.split("=") for o in p)
        ok = float(values["optimizer.lr"]) <= boundary(int(values["schedule.warmup_steps"]), int(values["seed"]))
        outcomes.setdefault(cell(p), []).append(ok)
    assert all(False not in ran[:-1] for ran in outcomes.values()), "nothing runs in a cell after a seed failed"
    assert any(ran == [False] for ran in outcomes.values()), "a cell decided by one failing seed"
    runs = lambda o: sum(len(c) for c in o.calls)  # noqa: E731
    assert runs(oracle) < runs(oracle_together), (runs(oracle), runs(oracle_together))


def test_monotonicity_contradicted_is_searched_on_its_own(tmp_path):
    """T_wrm 64 trains less far than T_wrm 16: its own measurements decide, and the row says so."""
    truth = {1: 0.125, 16: 2.0, 64: 0.5, 256: 8.0}
    rows, _ = boundary_search(tmp_path, lambda w, s: truth[w])
    assert {int(r["schedule.warmup_steps"]): float(r["eta_max"]) for r in rows} == truth
    assert any(r["monotone_checked"] == "False" for r in rows)


def test_finished_runs_are_reused(tmp_path):
    _, first = boundary_search(tmp_path, lambda w, s: DEMO[w])
    rows, again = boundary_search(tmp_path, lambda w, s: 0.0)  # a second search over the same folders
    assert {int(r["schedule.warmup_steps"]): float(r["eta_max"]) for r in rows} == DEMO
    assert first.trained > 0 and again.trained == 0


def test_real_fig3_like_boundary_search_matches_the_full_grid(tmp_path, tiny):
    """The CPU Figure 3 muP + cross-entropy preset shrunk (tiny FCN, 24 steps, 5 rates in units of 1/lambda0, T_wrm
    1 and 8, seeds 0 and 1; at T_wrm 1 the seeds disagree at 4/lambda0): the boundary search's eta_max per T_wrm, and
    analysis.eta_max on its sparse folder, equal the full grid's, with fewer runs. The full grid then runs in the same
    folder: the search's finished runs are reused (the same configs: bench.runfolder.check), the others are trained.
    Both multiruns run in this process, as launch.py runs them (real runs, Hydra's basic launcher)."""
    from analysis import eta_max, load_runs

    shrunk = [o for o in tiny if not o.startswith(("steps=", "eval_every="))] + ["steps=24", "eval_every=8"]
    grid = ["experiment=cpu/fig3_wrn_mup_xent", *shrunk, "threads=1"]
    grid += ["optimizer.lr=0.25,1,4,16,64", "schedule.warmup_steps=1,8", "seed=0,1", f"hydra.sweep.dir={tmp_path}"]
    multirun(*grid, "hydra/sweeper=boundary")
    rows = list(csv.DictReader((tmp_path / "boundary.csv").open()))
    got = {int(r["schedule.warmup_steps"]): float(r["eta_max"]) if r["eta_max"] else float("nan") for r in rows}
    sparse = eta_max(load_runs(tmp_path)).set_index("schedule.warmup_steps")["eta_max"].to_dict()
    runs = sum(int(r["runs"]) for r in rows)
    assert runs == len(list(tmp_path.glob("*/result.json"))) < 20, runs
    multirun(*grid)
    assert len(list(tmp_path.glob("*/result.json"))) == 20
    expected = eta_max(load_runs(tmp_path)).set_index("schedule.warmup_steps")["eta_max"].to_dict()
    same = lambda a, b: a == b or (a != a and b != b)  # noqa: E731  (NaN: nothing trains, in both)
    assert got.keys() == expected.keys() == sparse.keys()
    assert all(same(got[w], expected[w]) and same(sparse[w], expected[w]) for w in got), (got, sparse, expected)
