"""Kill-and-resume: a run killed with SIGKILL after a checkpoint, then run again, writes byte-identical metrics.csv
and the same result.json (but for the wall time) as the same run left alone -- for every optimizer, every schedule
(a persistent catapult that re-estimates eta_c after the checkpoint included), with sharpness measurements and with
augmentation. One factor at a time.

The killed run is a real process (forked from the test, so that it costs no interpreter start-up) that trains,
checkpoints, writes metrics past the checkpoint and then waits at a given step for its SIGKILL: the kill lands after
the checkpoint and before the end, every time.
"""

import json
import os
import signal
import time

import pytest

from bench import checkpoint
from bench.train import Trainer, run
from tests.conftest import compose_cfg
from tests.helpers import comparable, subprocess_env, tiny_run

BASE = tiny_run("steps=40", "eval_every=8", "threads=1")
TRAIN_STEP = Trainer.train_step

# name: (overrides, checkpoint_every, the step the process is killed at)
CASES = {
    "sgd_momentum": (["optimizer.momentum=0.9", "optimizer.lr=0.05"], 10, 25),
    "adam": (["optimizer=adam", "optimizer.lr=0.001"], 10, 25),
    "gi_adam": (["optimizer=gi_adam", "optimizer.lr=0.001"], 10, 25),
    "ri_adam": (["optimizer=ri_adam", "optimizer.lr=0.001"], 10, 25),
    "radam": (["optimizer=radam", "optimizer.lr=0.001"], 10, 25),
    "linear_warmup": (["schedule.warmup_steps=30", "schedule.lr_init=0.01", "optimizer.lr=0.2"], 10, 25),
    "cosine": (["schedule=cosine", "schedule.warmup_steps=8"], 10, 25),
    # T_wrm = 0.75 x 40 = 30 (recorded in result.json): killed inside the half-cosine ramp
    "cosine_warmup_fraction": (["schedule=cosine_warmup", "schedule.warmup_fraction=0.75", "optimizer.lr=0.2"], 10, 25),
    "catapult": (["schedule=catapult", "schedule.warmup_steps=30", "optimizer.lr=2"], 10, 25),
    # eta_c is re-estimated at steps 1, 3 and 5 (checked below): checkpoint at step 2, killed at step 4
    "persistent_catapult": (["schedule=persistent_catapult", "schedule.warmup_steps=16", "optimizer.lr=8"], 2, 4),
    # measured at steps 1, 6, 11, 16 (before the checkpoint at 20), 21 (lost with the kill, redone from the
    # checkpoint's warm starts), 26, 31, 36
    "measure_sgd": (["measure.every=5", "measure.max_iter=20"], 10, 25),
    "measure_adam": (["optimizer=adam", "optimizer.lr=0.001", "measure.every=5", "measure.max_iter=20"], 10, 25),
    "augment": (["dataset.flip=true", "dataset.crop_padding=2", "dataset.mixup=true"], 10, 25),
}


def kill_after_checkpoint(cfg, run_dir, kill_at: int) -> None:
    """Train cfg in a child process that stops at step kill_at (before taking it), then SIGKILL it."""
    paused = run_dir.parent / f"{run_dir.name}.paused"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:

            def step(self, s):
                if s == kill_at:
                    paused.write_text(str(s))
                    time.sleep(600)
                return TRAIN_STEP(self, s)

            Trainer.train_step = step
            run(cfg, run_dir)
        finally:
            os._exit(3)
    deadline = time.time() + 300
    while not paused.exists():
        done, _ = os.waitpid(pid, os.WNOHANG)
        assert done == 0, "the run ended before it was killed"
        assert time.time() < deadline, "the run never reached the kill step"
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.racing
@pytest.mark.parametrize("case", list(CASES))
def test_kill_and_resume_is_exact(tmp_path, monkeypatch, case):
    overrides, every, kill_at = CASES[case]
    cfg = compose_cfg(*BASE, *overrides, f"checkpoint_every={every}")
    alone = run(cfg, tmp_path / "alone")
    assert alone["status"] == "completed"

    killed = tmp_path / "killed"
    kill_after_checkpoint(cfg, killed, kill_at)
    assert not (killed / "result.json").exists(), "killed before the end"
    saved = checkpoint.read(killed / checkpoint.CHECKPOINT)
    last = kill_at - 1 - (kill_at - 1) % every
    assert saved["step"] == last and last < kill_at - 1, "steps after the checkpoint are lost and redone"

    seen = []
    monkeypatch.setattr(Trainer, "train_step", lambda self, s: seen.append(s) or TRAIN_STEP(self, s))
    resumed = run(cfg, killed)
    assert seen == list(range(last + 1, 41)), "resumed at the checkpoint"
    assert (killed / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable(resumed) == comparable(alone)
    if case == "persistent_catapult":  # the resumed run re-estimated eta_c from the checkpointed level
        assert saved["components"]["progress"]["extras"]["catapult_searches"] < resumed["catapult_searches"]
    if case.startswith("measure"):
        assert "sharpness" in (killed / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.racing
def test_ctrl_c_then_the_same_command_resumes(tmp_path):
    """launch.py as a user runs it: Ctrl-C (SIGINT) after a checkpoint exits with one line, no traceback; the same
    command resumes from the checkpoint to the metrics of an uninterrupted run."""
    import subprocess
    import sys
    from subprocess import PIPE

    from tests.conftest import HANG_S, ROOT, Stops

    args = ["model.width=16", "model.depth=2", "batch_size=16", "steps=200", "eval_every=50", "device=cpu"]
    args += ["checkpoint_every=50", "threads=1", f"hydra.run.dir={tmp_path / 'run'}"]
    env = subprocess_env()
    cmd = [sys.executable, str(ROOT / "launch.py"), *args]
    with Stops(tmp_path / "stops") as stops:  # the run waits after its first checkpoint (step 50)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env | stops.env(), stdout=PIPE, stderr=PIPE, text=True)
        try:
            stops.wait(alive=lambda: proc.poll() is None)
            proc.send_signal(signal.SIGINT)  # Ctrl-C there
            _, stderr = proc.communicate(timeout=HANG_S)
        finally:
            proc.kill()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["interrupted (Ctrl-C): the same command resumes from the last checkpoint"], stderr
    assert proc.returncode == 1 and not (tmp_path / "run" / "result.json").exists(), "interrupted before the end"
    assert checkpoint.read(tmp_path / "run" / checkpoint.CHECKPOINT)["step"] == 50

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {tmp_path / 'run' / checkpoint.CHECKPOINT} at step" in again.stdout + again.stderr
    alone = run(compose_cfg(*args[:-1]), tmp_path / "alone")
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == (tmp_path / "alone" / "metrics.csv").read_bytes()
    assert comparable(json.loads((tmp_path / "run" / "result.json").read_text())) == comparable(json_safe(alone))


def json_safe(result: dict) -> dict:
    from bench.runfolder.store import json_safe

    return json.loads(json.dumps(json_safe(result)))
