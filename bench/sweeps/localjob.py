"""submitit's local executor with two fixes, so that a requeued local job is never lost (bench/sweeps/launcher.py LocalJobs).

- Its controller restarts a requeued job at most 6 times (Controller.run's max_retry), whatever max_num_timeout says:
  the 7th attempt never starts and the job ends FINISHED with no result. Here the controller allows
  max_num_timeout + 1 attempts, so the last timeout ends the job with submitit's "timed-out too many times" error,
  which the launcher records in the point's result.json.
- The pre-timeout signal (SIGUSR2) can arrive before submitit installs its handler (a job's start-up, importing torch
  and unpickling its task, takes longer than timeout - signal_delay_s under load); its default action then kills the
  job mid start-up. Here a job notes such a signal and delivers it once submitit's handler is in place: the job is
  requeued (counting as a timeout), as it would be later in the attempt.

`python -m bench.sweeps.localjob controller FOLDER` runs a job's controller, `python -m bench.sweeps.localjob task FOLDER` a task.
"""

from __future__ import annotations

import signal

_early: list[int] = []
if __name__ == "__main__":  # first thing in the task: note the signal until submitit handles it
    signal.signal(signal.SIGUSR2, lambda signum, frame: _early.append(signum))

import os  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from submitit.local import local  # noqa: E402

_MAX_RETRY = "WARMUP_BENCH_LOCAL_MAX_RETRY"


class LocalExecutor(local.LocalExecutor):
    """submitit.LocalExecutor whose controller and tasks are this module's."""

    @property
    def _submitit_command_str(self) -> str:
        return " ".join([self.python, "-u -m bench.sweeps.localjob task", shlex.quote(str(self.folder))])

    def _submit_command(self, command: str) -> local.LocalJob:
        """submitit's LocalExecutor._submit_command and start_controller, with this module's controller."""
        p = self.parameters
        ntasks = p.get("tasks_per_node", 1)
        visible = p.get("visible_gpus", ())
        gpus = range(p.get("gpus_per_node", 0)) if visible == () else visible[: p.get("gpus_per_node", 0)]
        env = dict(os.environ)
        env.update(
            SUBMITIT_LOCAL_NTASKS=str(ntasks),
            SUBMITIT_LOCAL_COMMAND=command,
            SUBMITIT_LOCAL_TIMEOUT_S=str(int(60 * p.get("timeout_min", 2.0))),
            SUBMITIT_LOCAL_SIGNAL_DELAY_S=str(int(p.get("signal_delay_s", 30))),
            SUBMITIT_LOCAL_NODEID="0",
            SUBMITIT_LOCAL_JOB_NUM_NODES="1",
            SUBMITIT_STDERR_TO_STDOUT="1" if p.get("stderr_to_stdout", False) else "",
            SUBMITIT_EXECUTOR="local",
            CUDA_VISIBLE_DEVICES=",".join(str(k) for k in gpus),
            SUBMITIT_LOCAL_WITH_SHELL="1" if p.get("setup") else "",
        )
        env[_MAX_RETRY] = str(self.max_num_timeout + 1)
        cmd: list[str] | str = [sys.executable, "-m", "bench.sweeps.localjob", "controller", str(self.folder)]
        if p.get("setup"):
            cmd = " && ".join([*p["setup"], shlex.join(cmd)])
        process = subprocess.Popen(cmd, shell=bool(p.get("setup")), env=env)
        return local.LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=list(range(ntasks)))


def _task(folder: str) -> None:
    from submitit.core import submission

    handle = local.LocalJobEnvironment._handle_signals

    def handle_then_deliver(self, paths, delayed) -> None:
        handle(self, paths, delayed)
        if _early:  # arrived during start-up: submitit's handler checkpoints and requeues now
            print("pre-timeout signal received during start-up: delivered now", file=sys.stderr, flush=True)
            signal.raise_signal(_early[0])

    local.LocalJobEnvironment._handle_signals = handle_then_deliver
    submission.process_job(folder)


if __name__ == "__main__":
    role, folder = sys.argv[1:]
    if role == "controller":
        local.Controller(Path(folder)).run(max_retry=int(os.environ[_MAX_RETRY]))
    else:
        _task(folder)
