"""The documentation, run as a newcomer would: every block marked `<!-- walkthrough: NAME [fresh] -->` is run
verbatim from a fresh clone of this repository (HEAD plus the working tree's changes to tracked files), in the order
of `documents()`: README.md, then every docs/*.md by file name (a new page is picked up without editing this test),
so a documentation change that breaks a documented path fails here. A line with a `# (skip: REASON)` comment is
skipped and its reason printed; `fresh` removes outputs/ first (so that a launcher runs its points, not the previous
one's). The basic launcher's block (README) is not fresh: it follows `make demo`, the same grid on the same launcher,
and resumes it as a reader's would (every point launched, its folder checked and found finished); the local and
SLURM launchers (docs/clusters.md) train theirs. Each block runs in a session of its own: a block that times out is
killed with all it started (make, launch.py, jobs). Each prints its wall time and CPU time (of its finished
processes).
The SLURM path runs in a clone of its own, as a test marked `slurm` (one cluster a machine: conftest.py keeps the
slurm tests in one pytest-xdist worker, one after the other), so that the other paths run beside it.

What is not verbatim, and why: the clone uses this test's venv (.venv is a link to it, and pyproject.toml and
constraints.txt are made older than the venv's install stamp, so that `make` does not reinstall), PYTHONPATH is the
clone, and two documented Makefile variables come from the environment: GRID (two points of the demo grid, 64 steps a
run, so the sweeps take seconds) and TESTS (`make test` runs one test file: the suite cannot contain itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
GRID = "optimizer.lr=4 schedule.warmup_steps=1,64 steps=64 eval_every=32 name=demo"
POINTS = 2  # in GRID
TESTS = "tests/test_schedule.py"
TIMEOUT_S = 900  # one path, at most
SLURM_PORTS = (6817, 6818, 6819, 3307)
BLOCK = re.compile(r"<!-- walkthrough: ([\w-]+)((?: \w+)*) -->\n```(\w+)\n(.*?)\n```", re.S)
SKIP = re.compile(r"#\s*\(skip: ([^)]*)\)")


@dataclass
class Path_:  # one documented path: a marked block of README.md or docs/*.md
    name: str
    lang: str
    lines: list[str]
    skipped: list[tuple[str, str]]  # (line, reason)
    fresh: bool


def documents(root: Path) -> list[Path]:
    """The pages whose marked blocks the walkthrough runs, in its order: README.md, then docs/*.md by file name."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def paths(text: str) -> list[Path_]:
    """The marked blocks of one page, in its order."""
    out = []
    for m in BLOCK.finditer(text):
        name, opts, lang, body = m.groups()
        lines, skipped = [], []
        for line in body.splitlines() if lang != "python" else [body]:
            reason = SKIP.search(line)
            if reason:
                skipped.append((line, reason.group(1)))
            elif line.strip():
                lines.append(line)
        out.append(Path_(name, lang, lines, skipped, "fresh" in opts.split()))
    return out


def test_readme_blocks_are_found_and_skips_carry_their_reason():
    docs = documents(ROOT)
    assert docs[0].name == "README.md" and ROOT / "docs/clusters.md" in docs, docs
    texts = [doc.read_text() for doc in docs]
    walk = [p for text in texts for p in paths(text)]
    found = {p.name: p for p in walk}
    assert {"set-up", "single-run", "sweep-basic", "sweep-local", "slurm", "reference", "python"} <= set(found)
    # the basic launcher resumes make demo's sweep (the same grid); the local and SLURM launchers train their own
    assert (found["sweep-basic"].fresh, found["sweep-local"].fresh, found["slurm"].fresh) == (False, True, True)
    order = [p.name for p in walk]
    assert order[0] == "set-up", order  # make demo first: it installs, and the basic launcher's block resumes it
    assert order.index("sweep-basic") < min(i for i, p in enumerate(walk) if p.fresh), "a fresh block before it"
    markers = [m for text in texts for m in re.findall(r"^<!-- walkthrough:", text, re.M)]
    assert len(markers) == len(found), "a marker whose block the test cannot read (or a name used twice, in any page)"
    assert [line.split("#")[0].strip() for line in found["slurm"].lines] == [
        "make slurm-up",
        "source .slurm/env",
        "make sweep SWEEP=demo LAUNCHER=slurm",
        "make status SWEEP=demo",
        "make heatmaps SWEEP=outputs/sweeps/demo",
        "make slurm-down",
    ]
    doc = "<!-- walkthrough: x fresh -->\n```bash\nmake a\nmake b  # (skip: needs CIFAR-10)\n```\n"
    (p,) = paths(doc)
    assert (p.name, p.fresh, p.lines) == ("x", True, ["make a"])
    assert p.skipped == [("make b  # (skip: needs CIFAR-10)", "needs CIFAR-10")]


@pytest.mark.racing
def test_a_path_that_times_out_is_killed_with_everything_it_started(tmp_path, monkeypatch):
    """bash -c's children (make, launch.py) run in bash's process group: a timeout kills the group, not bash alone.
    The 2 s count once the path has started its child (a loaded machine may take longer to start bash)."""
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT_S", 2)
    pid_file = tmp_path / "child.pid"

    class ChildStarted(subprocess.Popen):
        def communicate(self, *args, **kwargs):
            wait_until("the path's child", pid_file.exists)  # written whole (mv)
            return super().communicate(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", ChildStarted)
    path = Path_(
        "stuck", "bash", ["sleep 300 & echo $! > child.pid.tmp && mv child.pid.tmp child.pid", "wait"], [], False
    )
    with pytest.raises(pytest.fail.Exception, match="'stuck' still running after 2 s"):
        _run(path, tmp_path, dict(os.environ), [])
    child = int(pid_file.read_text())
    wait_until("the block's child to end with the timeout", lambda: not _alive(child))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"  # a zombie is dead, waiting for its parent (init) to reap it


def _clone(dest: Path) -> None:
    subprocess.run(["git", "clone", "-q", "--shared", str(ROOT), str(dest)], check=True, timeout=300)
    diff = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], capture_output=True, check=True)
    if diff.stdout:
        subprocess.run(["git", "-C", str(dest), "apply", "--whitespace=nowarn"], input=diff.stdout, check=True)


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _slurm_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root"
    busy = [p for p in SLURM_PORTS if _port_in_use(p)]
    if busy:
        return f"ports {busy} are in use: another SLURM cluster runs on this machine (one a machine)"
    return None


def _run(path: Path_, clone: Path, env: dict, log: list[str]) -> None:
    if path.lang == "python":
        cmd = [str(clone / ".venv/bin/python"), "-c", path.lines[0]]
        shown = "python <<documented snippet>>"
    else:
        # one shell per path: `source .slurm/env` carries to the next lines; -x echoes each command as run
        cmd = ["bash", "-euxo", "pipefail", "-c", "\n".join(path.lines)]
        shown = " ; ".join(path.lines)
    start, cpu = time.time(), _children_cpu()
    # its own session: on a timeout the whole group goes (make, launch.py, its jobs), not bash alone
    proc = subprocess.Popen(cmd, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(
            f"documented path {path.name!r} still running after {TIMEOUT_S} s (killed):\n{out[-3000:]}\n{err[-3000:]}"
        )
    print(f"walkthrough {path.name}: exit {proc.returncode} after {time.time() - start:.0f} s, "
          f"{_children_cpu() - cpu:.0f} CPU-s")  # fmt: skip
    log.append(f"== {path.name}: {shown}\n{out[-3000:]}\n{err[-3000:]}")
    assert proc.returncode == 0, f"documented path {path.name!r} failed (exit {proc.returncode}):\n{log[-1]}"


def _children_cpu() -> float:
    """CPU seconds of the finished (waited-for) child processes so far, their own children's included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the path's process group (a launcher cancels its jobs on it), then SIGKILL to what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _walk(tmp_path: Path, slurm: bool) -> None:
    """Clone into tmp_path, then run the documented paths in order: the SLURM path alone (slurm=True) or every other
    one."""
    if os.environ.get("WARMUP_BENCH_WALKTHROUGH"):
        pytest.skip("inside a walkthrough already")
    venv = Path(sys.prefix)
    if not (venv / ".installed").exists() or shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("needs make, git and a venv installed by `make install` (its .installed stamp)")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    if slurm and (why := _slurm_unavailable()):
        if os.environ.get("WARMUP_BENCH_REQUIRE_SLURM") == "1":
            pytest.fail(f"the documented SLURM path must run here: {why}")
        pytest.skip(why)
    clone = tmp_path / "warmup-bench"
    _clone(clone)
    (clone / ".venv").symlink_to(venv)
    for prerequisite in ("pyproject.toml", "constraints.txt"):  # the stamp's: older, so make does not reinstall
        os.utime(clone / prerequisite, (0, 0))
    # a reinstall would point the shared venv's editable install at this temporary clone
    up_to_date = subprocess.run(["make", "-q", "install"], cwd=clone, capture_output=True)
    assert up_to_date.returncode == 0, "make would reinstall the shared venv from the clone"
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_CONF", "HYDRA_FULL_ERROR", "WARMUP_BENCH_REFERENCE")}
    env.update(PYTHONPATH=str(clone), GRID=GRID, TESTS=TESTS, WARMUP_BENCH_WALKTHROUGH="1", MPLBACKEND="Agg")
    for own in ("VENV", "PYTEST_ADDOPTS"):  # this run's own settings, not a newcomer's
        env.pop(own, None)

    log: list[str] = []
    walk = [p for doc in documents(clone) for p in paths(doc.read_text()) if (p.name == "slurm") == slurm]
    try:
        for path in walk:
            for line, reason in path.skipped:
                print(f"walkthrough {path.name}: skipped `{line}`: {reason}")
            if path.fresh:
                shutil.rmtree(clone / "outputs", ignore_errors=True)
            _run(path, clone, env, log)
            _check(path.name, clone, log[-1])
    finally:
        if slurm:
            subprocess.run([str(clone / "scripts/slurm/stop.sh")], capture_output=True, timeout=120)


@pytest.mark.slow
def test_readme_walkthrough_from_a_fresh_clone(tmp_path):
    """Every documented path but SLURM's, in the walkthrough's order (docs/analysis.md's python snippet reads the demo
    sweep of README's blocks)."""
    _walk(tmp_path, slurm=False)


@pytest.mark.slow
@pytest.mark.slurm  # the documented `make slurm-up` starts the machine's one cluster: never beside tests/test_slurm.py
def test_readme_slurm_walkthrough_from_a_fresh_clone():
    """The SLURM path in its own fresh clone: `make slurm-up` ... `make slurm-down`, as printed. The clone lies in a
    short folder: slurmd's sockets under .slurm/spool/ must stay under the 108-byte Unix socket path limit, which
    pytest-xdist's tmp_path (/tmp/pytest-of-USER/pytest-N/popen-gwN/TEST_NAME/) exceeds."""
    with tempfile.TemporaryDirectory(prefix="wb-") as short:
        _walk(Path(short), slurm=True)


def _check(name: str, clone: Path, out: str) -> None:
    """What each path must have made, beyond exiting 0."""
    demo = clone / "outputs/sweeps/demo"
    if name in ("set-up", "sweep-basic", "sweep-local", "slurm"):
        assert len(list(demo.glob("*/result.json"))) == POINTS, out
    if name in ("sweep-basic", "sweep-local", "slurm"):  # make status: the whole (GRID) grid, nothing missing
        assert f"outputs/sweeps/demo: {POINTS} points:" in out and " 0 missing" in out, out
    if name == "set-up":
        assert (demo / "phase_best_test_acc.png").exists() and "passed" in out
        # what the README says of GRID's two points: eta_trgt = 4 diverges without warmup, trains with T_wrm = 64
        status = {}
        for result in demo.glob("*/result.json"):
            warmup = re.search(r"warmup_steps=(\d+)", result.parent.name).group(1)
            status[warmup] = json.loads(result.read_text())["status"]
        assert status == {"1": "diverged", "64": "completed"}, status
    if name in ("sweep-local", "slurm"):
        assert list((demo / ".submitit").iterdir()), f"{name}: no submitit jobs: {out}"
    if name == "slurm":
        assert (demo / "phase_best_test_acc.png").exists() and "slurm: stopped" in out
    if name == "single-run":
        assert len(list((clone / "outputs/runs").glob("*/result.json"))) == 2 and "optimizer:" in out
    if name == "reference":
        assert "91 reference runs" in out and "0.02048" in out and "0.08192" in out
    if name == "python":
        assert (clone / "phase.png").exists() and "eta_max" in out
