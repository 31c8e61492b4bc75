"""Run identity and resumable sweeps with Hydra's basic launcher: config-derived folders, a failing point that does
not stop the others, `python -m analysis status`, and a relaunch that runs only what is not finished.
A relaunch runs in this process (the sweep as launch.py runs it, tests/conftest.py `multirun`), with
the bench loggers' records gathered; a local launcher's jobs are processes all the same."""

import json
import logging
import re
from contextlib import contextmanager

import pytest
from hydra.core.utils import JobStatus

from analysis.status import counts, report, sweep_status
from bench.runfolder import MAX_PREFIX, run_id
from bench.sweeps.summary import SweepEnded
from tests.conftest import launch, multirun
from tests.helpers import tiny_run


def test_run_id_is_config_derived_stable_and_bounded():
    a = run_id(["optimizer.lr=0.5", "schedule.warmup_steps=64", "sweep=demo"])
    assert (
        a.startswith("lr=0.5,warmup_steps=64,sweep=demo_") and len(a) == len("lr=0.5,warmup_steps=64,sweep=demo_") + 8
    )
    # order, spelling of the same number and keys that do not change results do not matter
    exclude = ["force", "threads", "logger"]
    same = ["schedule.warmup_steps=64", "sweep=demo", "optimizer.lr=0.50", "force=true", "threads=4"]
    assert run_id(same, exclude) == a
    assert run_id(["optimizer.lr=1"]) == run_id(["optimizer.lr=1.0"])
    # sweeps launched as `+sweep=demo` (before presets took no '+') keep their point folders
    assert run_id(["optimizer.lr=0.5", "schedule.warmup_steps=64", "+sweep=demo"]) == a
    # any other change names another run
    assert run_id(["optimizer.lr=0.25", "schedule.warmup_steps=64", "sweep=demo"]) != a
    assert run_id(["optimizer.lr=0.5", "schedule.warmup_steps=64"]) != a
    # many overrides: the readable part is cut, the hash still tells them apart; no '/' in a folder name
    many = [f"model.key{i}=value{i}" for i in range(60)]
    assert len(run_id(many)) <= MAX_PREFIX + 9 and run_id(many) != run_id(many[:-1])
    assert "/" not in run_id(["dataset.root=/data/mnist"])


TINY = tiny_run(drop=("model.width",))
# width 1e8: the first layer alone needs 313 GB, so building the model fails at once (CPU out of memory)
GRID = ["-m", "model.width=100000000,16,24", "optimizer.lr=0.25,64"]


@pytest.mark.slow
def test_failing_point_does_not_stop_the_sweep_then_status_and_relaunch(tmp_path):
    sweep = tmp_path / "sweep"
    proc = launch(*GRID, *TINY, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1, "a failed point makes the multirun exit non-zero"
    assert "can't allocate memory" in proc.stdout, "the point's failure, as it is logged"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [  # the sweep's summary, not Hydra's traceback of the first failed point
        "error: the sweep ended with failed points: 6 points: 2 completed, 2 diverged, 2 failed, "
        f"0 skipped (running elsewhere), 0 unfinished; see: python -m analysis status {sweep}"
    ], proc.stderr
    table = sweep_status(sweep).set_index(["model.width", "optimizer.lr"])["status"]
    assert table.to_dict() == {
        ("16", "0.25"): "completed",
        ("16", "64"): "diverged",
        ("24", "0.25"): "completed",
        ("24", "64"): "diverged",
        ("100000000", "0.25"): "failed",
        ("100000000", "64"): "failed",
    }, "the points after the failing ones ran too"
    failed = json.loads(next(p for p in sweep.glob("*width=100000000,lr=0.25,*/result.json")).read_text())
    assert failed["error_type"] == "out_of_memory" and "can't allocate memory" in failed["error"]

    # a point that is running (metrics, no result yet) and one that never started
    running = next(sweep.glob("*width=24,lr=0.25,*"))
    (running / "result.json").unlink()
    missing = next(sweep.glob("*width=24,lr=64,*"))
    for p in sorted(missing.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    missing.rmdir()
    assert counts(sweep_status(sweep)) == {"completed": 1, "diverged": 1, "failed": 2, "running": 1, "missing": 1}
    text = report(sweep)
    assert "6 points: 1 completed, 1 diverged, 2 failed, 1 running, 1 missing" in text
    assert text.count("out of memory: RuntimeError") == 2

    finished = {p: p.read_bytes() for p in sweep.glob("*width=16,*/result.json")}
    with bench_log() as lines, pytest.raises(SweepEnded, match=r"^error: .*: 6 points: 2 completed, 2 diverged, 2 f"):
        multirun(*GRID[1:], *TINY, f"hydra.sweep.dir={sweep}")  # the failing points fail again
    log = "\n".join(lines)
    assert log.count("skipped; force=true reruns it") == 2
    trained = re.findall(r": (completed|diverged)(?: at step \d+)?, best test acc", log)
    assert sorted(trained) == ["completed", "diverged"], "only the running and the missing point trained"
    assert {p: p.read_bytes() for p in finished} == finished
    assert counts(sweep_status(sweep)) == {"completed": 2, "diverged": 2, "failed": 2, "running": 0, "missing": 0}


@contextmanager
def bench_log():
    """The messages of bench's loggers while the block runs (Hydra's job logging, configured in this process by its
    basic launcher, replaces the root logger's handlers, not those of the `bench` logger)."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("bench")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.slow
def test_local_launcher_runs_a_few_at_a_time_and_skips_finished_points(tmp_path):
    """The launcher in this process, each point a job of its own (a process); relaunched, nothing is submitted."""
    sweep = tmp_path / "sweep"
    args = ["optimizer.lr=0.25,0.5", "model.width=16", *TINY, "hydra/launcher=local", f"hydra.sweep.dir={sweep}"]
    first = multirun(*args, "hydra.launcher.max_parallel=1")
    assert [r.status for r in first] == [JobStatus.COMPLETED] * 2
    assert counts(sweep_status(sweep))["completed"] == 2
    # one job per point, each with its own job id
    assert len({p.parent.name for p in sweep.glob(".submitit/*/*_submitted.pkl")}) == 2
    results = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert [r["status"] for r in results] == ["completed", "completed"]
    with bench_log() as lines:
        again = multirun(*args)
    assert "2 of 2 runs already finished (result.json): not submitted" in lines
    assert [r.return_value for r in again] == [r.return_value for r in first]
    assert len({p.parent.name for p in sweep.glob(".submitit/*/*_submitted.pkl")}) == 2, "no new job"


def test_the_summary_counts_each_point_once_by_its_outcome(tmp_path):
    """bench.sweeps.summary: result.json's status when the folder has one; a point its launch found running elsewhere
    (its
    launch.log says so) is skipped; a failed job with no result.json (the disk was full) is failed; the rest,
    unfinished (never run, or stopped)."""
    from hydra.core.utils import JobReturn

    from bench.sweeps.summary import outcomes, summary

    folders = {name: tmp_path / name for name in ("c", "d", "f", "held", "fault", "stopped", "never")}
    for name in ("c", "d", "f", "held", "fault", "stopped"):
        folders[name].mkdir()
    for name, status in (("c", "completed"), ("d", "diverged"), ("f", "failed")):
        (folders[name] / "result.json").write_text(json.dumps({"status": status}))
    (folders["held"] / "launch.log").write_text(
        "[...][bench.sweeps.lock][WARNING] - X: running elsewhere (pid 1); skipped\n"
    )
    (folders["stopped"] / "launch.log").write_text("[...][bench.train][INFO] - step 4/12\n")
    fault = JobReturn(overrides=["x=1"], status=JobStatus.FAILED, _return_value=OSError("disk full"))
    counts = outcomes(list(folders.values()), {folders["fault"]: fault})
    assert summary(tmp_path, counts) == (
        "7 points: 1 completed, 1 diverged, 2 failed, 1 skipped (running elsewhere), 2 unfinished; "
        f"see: python -m analysis status {tmp_path}"
    )


def test_a_presets_grid_changed_on_the_command_line_needs_a_folder_of_its_own(tmp_path, monkeypatch):
    """`-m sweep=demo optimizer.lr=0.5,2,8` would write a trial grid into outputs/sweeps/demo, among the preset's
    results: refused in one line before anything runs, unless the trial names a folder (name=, hydra.sweep.dir=)."""
    from bench.errors import ConfigError
    from bench.sweeps.preflight import check_command

    monkeypatch.chdir(tmp_path)
    line = (
        r"^optimizer.lr=0.5 steps=256 changes the grid of the preset 'demo', whose results are in "
        r"outputs/sweeps/demo: give the trial a folder of its own with name=NAME \(outputs/sweeps/NAME\) or "
        r"hydra.sweep.dir=DIR$"
    )
    with pytest.raises(ConfigError, match=line):
        check_command(["-m", "sweep=demo", "optimizer.lr=0.5", "steps=256"])
    with pytest.raises(ConfigError, match=r"^seed=5 changes the grid of the preset 'cpu/fig1_fcn_mechanisms'"):
        check_command(["-m", "experiment=cpu/fig1_fcn_mechanisms", "seed=5"])
    assert check_command(["-m", "sweep=demo", "optimizer.lr=0.5", "name=demo-try"]) == 4
    assert check_command(["-m", "sweep=demo", "optimizer.lr=0.5", f"hydra.sweep.dir={tmp_path}/try"]) == 4
    assert check_command(["-m", "sweep=mechanisms", "threads=1", "force=true"]) == 8, "keys that change no result"
    assert not (tmp_path / "outputs").exists()
