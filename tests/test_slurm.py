"""Sweeps on a real single-node SLURM cluster (scripts/slurm/start.sh: munge, MariaDB, slurmdbd, slurmctld, slurmd).

The module's fixture starts the cluster when it is not up and stops it at the end of this module (so that the
walkthrough test can start its own from a fresh clone: one cluster per machine). Without root or the Debian
packages the tests are skipped, unless WARMUP_BENCH_REQUIRE_SLURM=1 (set by .ci/run), which turns that into a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from analysis.status import counts, report, sweep_status
from bench.train import run
from tests.conftest import HANG_S, ROOT, Stops, compose_cfg, multirun, state, wait_until
from tests.helpers import tiny_run

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BASE = ROOT / ".slurm"
SLURM = ["hydra/launcher=slurm"]  # the preset's defaults (mem_gb 4, 1 CPU), as the README's command uses them
TINY = tiny_run(drop=("steps", "eval_every"))
# held where it waits after its first checkpoint (tests/stops: step 50), to signal it there
LONG = ["model.width=64", "model.depth=2", "batch_size=32", "steps=400", "eval_every=100", "device=cpu"]


def _alive(name: str) -> bool:
    try:
        os.kill(int((BASE / f"{name}.pid").read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


def _unavailable(why: str):
    if os.environ.get("WARMUP_BENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM tests must run here (WARMUP_BENCH_REQUIRE_SLURM=1): {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def slurm():
    """SLURM_CONF of a running cluster; started here (and stopped at the end) unless it was already up."""
    started = False
    if not (_alive("slurmctld") and _alive("slurmd")):
        if os.geteuid() != 0:
            _unavailable("the local SLURM cluster needs root (scripts/slurm/start.sh)")
        proc = subprocess.run([str(ROOT / "scripts/slurm/start.sh")], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            _unavailable(f"scripts/slurm/start.sh failed: {(proc.stdout + proc.stderr)[-2000:]}")
        started = True
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(BASE / "slurm.conf")
    yield os.environ["SLURM_CONF"]
    if old is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = old
    if started:
        subprocess.run([str(ROOT / "scripts/slurm/stop.sh")], capture_output=True, timeout=120)


_LAUNCHERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_stray_launcher():
    """A test that fails half-way leaves no launcher polling a cluster that is about to stop."""
    yield
    while _LAUNCHERS:
        proc = _LAUNCHERS.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_launch(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    """python launch.py ARGS in the background (its own process group, so that the test can kill it); env: more
    variables (a Stops')."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {}), "HYDRA_FULL_ERROR": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _LAUNCHERS.append(proc)
    return proc


def slurm_cmd(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, timeout=HANG_S).stdout


def job_ids(sweep: Path) -> list[str]:
    """Ids (ARRAY_TASK for arrays) of the jobs submitted into the sweep: submitit's folders with a job pickle."""
    return sorted(p.parent.name for p in (sweep / ".submitit").glob("*/*_submitted.pkl"))


def sacct_states(job: str) -> dict[str, str]:
    """Final state of each task of an array, from the accounting database (what submitit reads); a job's end
    reaches the database a moment after its result file, so wait for it."""

    def final():
        out = slurm_cmd("sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID,State")
        states = dict(line.split("|")[:2] for line in out.splitlines() if line.strip())
        return states if states and not set(states.values()) & {"PENDING", "RUNNING", "COMPLETING"} else None

    return wait_until(f"the final states of job {job}", final, every=0.5)


def results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


def test_node_is_the_machine_and_the_defaults_fit(slurm):
    node = dict(kv.split("=", 1) for kv in slurm_cmd("scontrol", "show", "node", "-o").split() if "=" in kv)
    mem_total = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) // 1024
    assert int(node["CPUTot"]) == len(os.sched_getaffinity(0))
    assert 0.8 * mem_total <= int(node["RealMemory"]) < mem_total or int(node["RealMemory"]) == mem_total - 512
    launcher = yaml.safe_load((ROOT / "conf/hydra/launcher/slurm.yaml").read_text())
    assert launcher["mem_gb"] * 1024 <= int(node["RealMemory"]) and launcher["cpus_per_task"] <= int(node["CPUTot"])


def test_a_request_the_cluster_cannot_hold_stops_with_one_line_naming_the_key(slurm, tmp_path):
    """The README's own case (more memory than the node has) from the command line: one line, no traceback, nothing
    submitted; then the other keys sbatch can refuse, each through the same launcher in this process (the line is
    the launcher's SystemExit, what launch.py prints)."""
    sweep = tmp_path / "sweep"
    grid = ["optimizer.lr=0.25,0.5", *TINY, "steps=4", *SLURM]
    args = ["-m", *grid, "hydra.launcher.mem_gb=100000", f"hydra.sweep.dir={sweep}"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=HANG_S,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sbatch refused the job array: ") and "change hydra.launcher.mem_gb=100000" in last
    assert not job_ids(sweep) and not list(sweep.glob("*/result.json"))

    for i, key in enumerate(
        ["hydra.launcher.cpus_per_task=512", "hydra.launcher.partition=nope", "hydra.launcher.gpus_per_node=1"]
    ):
        sweep = tmp_path / f"sweep{i}"
        with pytest.raises(SystemExit) as refused:
            multirun(*grid, key, f"hydra.sweep.dir={sweep}")
        line = str(refused.value.code)
        assert line.startswith("error: sbatch refused the job array: ") and f"change {key}" in line, line
        assert "\n" not in line and not job_ids(sweep) and not list(sweep.glob("*/result.json"))


@pytest.mark.racing
def test_array_then_launcher_killed_then_relaunch_runs_only_the_rest(slurm, tmp_path):
    """Every point waits after its first checkpoint (tests/stops): the test lets two go on to finish, holds a
    third, then kills the launcher: two of four finished, whatever the machine's speed (and whatever else the node
    runs: one point at a time is enough)."""
    sweep = tmp_path / "sweep"
    grid = ["optimizer.lr=0.25,0.5,1,2", *TINY, "steps=12", "eval_every=4", "checkpoint_every=4"]
    args = ["-m", *grid, *SLURM, f"hydra.sweep.dir={sweep}"]
    with Stops(tmp_path / "stops") as stops:
        first = start_launch(*args, "hydra.launcher.array_parallelism=2", log=tmp_path / "first.log", env=stops.env())
        for _ in range(2):
            stops.go(next(iter(stops.wait(alive=lambda: first.poll() is None))))
        wait_until("two finished points", lambda: len(results(sweep)) >= 2, every=0.5)
        stops.wait(alive=lambda: first.poll() is None)  # a third point, held after its checkpoint
        os.killpg(first.pid, signal.SIGKILL)  # the launcher dies halfway, and so does the rest of the array
        first.wait()
    arrays = {j.split("_")[0] for j in job_ids(sweep)}
    assert len(arrays) == 1, f"one job array for the grid, not {arrays}"
    first_array = arrays.pop()
    slurm_cmd("scancel", first_array)
    finished = {name: r for name, r in results(sweep).items() if r["status"] == "completed"}
    before = {name: (sweep / name / "result.json").read_bytes() for name in finished}
    assert len(before) == 2

    again = start_launch(*args, log=tmp_path / "again.log")
    assert again.wait(timeout=HANG_S) == 0, (tmp_path / "again.log").read_text()[-3000:]
    log = (tmp_path / "again.log").read_text()
    assert f"{len(before)} of 4 runs already finished (result.json): not submitted" in log
    arrays = {j.split("_")[0] for j in job_ids(sweep)} - {first_array}
    assert len(arrays) == 1, "the relaunch is one job array"
    states = sacct_states(arrays.pop())
    assert sorted(states.values()) == ["COMPLETED"] * (4 - len(before)), f"only the unfinished points ran: {states}"
    done = results(sweep)
    assert len(done) == 4 and {r["status"] for r in done.values()} == {"completed"}
    assert {name: (sweep / name / "result.json").read_bytes() for name in before} == before
    assert counts(sweep_status(sweep))["completed"] == 4


@pytest.mark.racing
def test_preempted_run_is_requeued_and_resumes_to_identical_metrics(slurm, tmp_path):
    """The scheduler's pre-timeout signal (USR2) mid-training: the run checkpoints, submitit requeues the job, the
    new attempt resumes from the checkpoint and ends with the metrics of the same run left alone. The signal reaches
    the run where it waits after its first checkpoint (tests/stops), whatever the machine's speed."""
    sweep = tmp_path / "sweep"
    grid = ["optimizer.lr=0.25", *LONG, "checkpoint_every=50"]
    with Stops(tmp_path / "stops") as stops:
        proc = start_launch(
            "-m", *grid, *SLURM, f"hydra.sweep.dir={sweep}", log=tmp_path / "launch.log", env=stops.env()
        )
        (pid,) = stops.wait(alive=lambda: proc.poll() is None)
        (job,) = job_ids(sweep)
        slurm_cmd("scancel", "--signal=USR2", job)
        wait_until("the signal", lambda: stops.signalled(pid))
        stops.release()
        assert proc.wait(timeout=HANG_S) == 0, (tmp_path / "launch.log").read_text()[-3000:]

    sacct_states(job)
    history = slurm_cmd("sacct", "-n", "-X", "-D", "-P", "-j", job, "-o", "JobID,State").split()
    assert sorted(history) == [f"{job}|COMPLETED", f"{job}|REQUEUED"], history
    log = "".join(p.read_text() for p in (sweep / ".submitit" / job).glob("*_log.*"))
    assert "on SIGUSR2; handing the signal on" in log and "resumed from" in log
    (folder,) = sweep.glob("*lr=0.25,*")
    assert json.loads((folder / "result.json").read_text())["status"] == "completed"
    run(compose_cfg(*grid), tmp_path / "alone")
    assert (folder / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()


@pytest.mark.racing
def test_job_killed_hard_is_recorded_failed_and_the_others_finish(slurm, tmp_path):
    """Point 1 is killed (SIGKILL to its job step) where it waits after its first checkpoint (tests/stops);
    the others go on. The launcher's delay in recording the death is printed (it waits for point 0 first, and
    submitit polls sacct): the test waits for it with a deadline that only bounds a hang."""
    sweep = tmp_path / "sweep"
    args = ["-m", "optimizer.lr=0.25,0.5,1", *TINY, "steps=400", "eval_every=50", "checkpoint_every=50", *SLURM]
    with Stops(tmp_path / "stops") as stops:
        proc = start_launch(*args, f"hydra.sweep.dir={sweep}", log=tmp_path / "launch.log", env=stops.env())
        while True:
            stopped = stops.wait(alive=lambda: proc.poll() is None)
            if point_1 := [(pid, folder) for pid, folder in stopped.items() if "lr=0.5," in folder.name]:
                break
            for pid in stopped:  # another point: it goes on
                stops.go(pid)
        ((pid, victim),) = point_1
        (array,) = {j.split("_")[0] for j in job_ids(sweep)}
        slurm_cmd("scancel", "--signal=KILL", f"{array}_1.0")  # SIGKILL to the run: no Python code runs (like os._exit)
        killed = time.time()
        wait_until("the killed run to end", lambda: state(pid) in ("Z", None))
        stops.release()  # the others go on (the launcher reads point 0's result first)
    result = victim / "result.json"
    wait_until("the killed point's failed result.json", result.exists, every=0.5)
    print(f"\nkilled job {array}_1 reported failed after {time.time() - killed:.1f} s")
    assert proc.wait(timeout=HANG_S) != 0, "a sweep with a failed point exits non-zero"

    failed = json.loads(result.read_text())
    assert failed["status"] == "failed" and failed["job_id"] == f"{array}_1"
    assert f"job {array}_1 ended without a result" in failed["error"]
    assert (victim / "traceback.txt").exists()
    states = sacct_states(array)
    assert states[f"{array}_0"] == states[f"{array}_2"] == "COMPLETED" and states[f"{array}_1"] != "COMPLETED"
    assert counts(sweep_status(sweep)) == {"completed": 2, "diverged": 0, "failed": 1, "running": 0, "missing": 0}
    assert f"job {array}_1 ended without a result" in report(sweep)

    # launched again: only the killed point runs, from its last checkpoint, to the metrics of an uninterrupted run
    again = start_launch(*args, f"hydra.sweep.dir={sweep}", log=tmp_path / "again.log")
    assert again.wait(timeout=HANG_S) == 0, (tmp_path / "again.log").read_text()[-3000:]
    assert "2 of 3 runs already finished (result.json): not submitted" in (tmp_path / "again.log").read_text()
    (retry,) = [j for j in job_ids(sweep) if not j.startswith(f"{array}_")]
    assert "resumed from" in "".join(p.read_text() for p in (sweep / ".submitit" / retry).glob("*_log.*"))
    run(
        compose_cfg(*[a for a in args[1:] if not a.startswith(("optimizer.lr", "hydra"))], "optimizer.lr=0.5"),
        tmp_path / "alone",
    )
    assert (victim / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert counts(sweep_status(sweep))["completed"] == 3
