"""Hydra launchers for sweeps on SLURM and on one machine: hydra-submitit-launcher's, with four changes.

- The launcher waits for every job, and a job that died without a result (os._exit, scancel, node failure, out of
  memory kill) gets a failed result.json and a traceback.txt with the end of its log in its run folder, so the
  sweep's other points still finish and `python -m analysis status` shows it; the multirun then exits non-zero.
- Points whose folder already holds a finished result.json are not submitted (force=true submits them): a
  relaunched sweep costs only its unfinished points.
- SLURM: the whole grid is one job array (array_parallelism caps how many run at once). Local: one job per point
  (its own job id, time limit, checkpoint and requeue, as on SLURM), at most `max_parallel` at a time; stopping the
  launcher (Ctrl-C, SIGTERM) stops its jobs.
- Each job sets torch's CPU threads to cpus_per_task, so runs sharing a node do not oversubscribe it.
- ensemble=K > 1: compatible points are trained K at a time, one pack per job (bench/sweeps/packs.py); each point keeps
  its folder, lock, finished skip and JobReturn; measure.every and catapult points run alone.

Preemption and timeouts: submitit sends SIGUSR2 before the time limit; the run checkpoints (bench/checkpoint.py) and
the launcher's `checkpoint()` requeues the same job, which resumes from the checkpoint (max_num_timeout bounds the
requeues after timeouts; preemptions do not count; a local job restarts as often, and a signal during its start-up
is delivered once submitit handles it: bench/sweeps/localjob.py). Presets: conf/hydra/launcher/{slurm,local}.yaml. Hydra
instantiates launchers only from the hydra_plugins package: hydra_plugins/warmup_bench names these two classes and
stores their configs (base_slurm, base_local).
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

from bench.errors import ConfigError
from bench.failure import describe_failure
from bench.sweeps.packs import PackJob, ensemble_size, group, point_key
from bench.runfolder import (
    FINISHED,
    RESULT,
    TRACEBACK,
    names,  # noqa: F401  (registers ${run_id:...} in the job process too)
    point_folder,
)
from bench.runfolder.check import mismatch
from bench.runfolder.store import RunStore
from bench.sweeps.sbatch import refusals

log = logging.getLogger(__name__)

_OWN_KEYS = ("max_parallel", "ensemble")  # ours, not submitit's


class _Launcher(BaseSubmititLauncher):
    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:  # runs inside the job
        self.set_threads()
        return super().__call__(*args, **kwargs)

    def setup(self, **kwargs: Any) -> None:
        ensemble_size(self.params.get("ensemble", 1))  # a bad K: one line before the sweep starts
        super().setup(**kwargs)

    def set_threads(self) -> None:
        threads = self.params.get("cpus_per_task")
        if threads:
            import torch

            torch.set_num_threads(int(threads))

    def _executor(self):
        import submitit

        params = {k: v for k, v in self.params.items() if k not in _OWN_KEYS}
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        generic = set(LocalQueueConf.__dataclass_fields__) - {"_target_"}
        executor.update_parameters(**{k if k in generic else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        assert self.config is not None
        k = ensemble_size(self.params.get("ensemble", 1))  # before anything is submitted
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("submitit '%s' sweep of %d runs into %s", self._EXECUTOR, len(job_overrides), sweep_dir)
        returns: list[JobReturn | None] = [self.finished(overrides) for overrides in job_overrides]
        pending = [i for i, done in enumerate(returns) if done is None]  # no job for a finished point (unless force)
        job_params = []
        for i in pending:
            idx = initial_job_idx + i
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(job_overrides[i])))
            job_params.append(
                (list(job_overrides[i]), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
            )
        if skipped := len(job_overrides) - len(pending):
            log.info("%d of %d runs already finished (result.json): not submitted", skipped, len(job_overrides))
        if not pending:
            return returns  # type: ignore[return-value]
        if k == 1:
            groups = [[j] for j in range(len(job_params))]
            jobs = self._submit(self._executor(), self, job_params)
        else:  # packs of compatible points, one job each (bench/sweeps/packs.py)
            groups = group([point_key(self.sweep_config(params[0])) for params in job_params], k)
            log.info("ensemble=%d: %d runs in %d jobs", k, len(job_params), len(groups))
            jobs = self._submit(self._executor(), PackJob(self), [([job_params[j] for j in g],) for g in groups])
        for g, job in zip(groups, jobs, strict=True):
            for j, ret in zip(g, self._result(job, [job_params[j] for j in g]), strict=True):
                returns[pending[j]] = ret  # in sweep order, whatever the packs
        return returns  # type: ignore[return-value]

    def _submit(self, executor, fn, args: list[tuple]) -> list:
        return executor.map_array(fn, *zip(*args))  # one job array

    def _result(self, job, points: list[tuple]) -> list[JobReturn]:
        """The JobReturns of a job's points (one, or a pack's), in order."""
        try:
            out = job.results()[0]
            return out if isinstance(out, list) else [out]
        except Exception as e:  # the job ended without a result: killed, cancelled, timed out, node failure
            returns = []
            for params in points:
                overrides = params[0]
                log.error("job %s (%s) died: %s", job.job_id, " ".join(overrides), str(e).splitlines()[0])
                self._record_death(job, overrides, e)  # into each point's folder that holds no result.json
                returns.append(JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=e))
            return returns

    def finished(self, overrides: list[str]) -> JobReturn | None:
        """A JobReturn for a point whose folder already holds a finished result.json of the same run identity
        (unless force=true)."""
        try:
            cfg = self.sweep_config(overrides)
            path = point_folder(cfg, multirun=True) / RESULT
            result = json.loads(path.read_text()) if path.exists() else None
            other = mismatch(path.parent, cfg) is not None  # another config's result: the job refuses it
        except Exception:  # cannot tell here: the job decides (bench.train.run skips finished runs too)
            return None
        if cfg.get("force") or other or not isinstance(result, dict) or result.get("status") not in FINISHED:
            return None
        from bench import objective

        # the value the task function would return (the sweeper's objective), as a job would
        return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=objective(cfg, result))

    def sweep_config(self, overrides: list[str]):
        """A point's config (with its hydra node) as its job composes it: Hydra's load_sweep_config."""
        assert self.hydra_context is not None and self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))

    def _record_death(self, job, overrides: list[str], e: Exception) -> None:
        try:
            store = RunStore(point_folder(self.sweep_config(overrides), multirun=True))
        except Exception as err:  # a subdir the launcher cannot resolve (e.g. ${hydra.job.id}): log only
            log.warning("cannot name the run folder of %s: %s", " ".join(overrides), err)
            return
        if (store.dir / RESULT).exists():  # the run wrote its own result before the job ended
            return
        state = _job_state(job)
        failure = describe_failure(e)
        failure["error"] = f"job {job.job_id} ended without a result (state {state}): {failure['error']}"
        if failure["error_type"] == "exception":
            failure["error_type"] = "job_died"
        tail = "\n".join((_job_log(job) or "").splitlines()[-40:])
        store.write_text(TRACEBACK, f"{failure['error']}\n\nend of the job's log:\n{tail}\n")
        store.write_result({"status": "failed", **failure, "job_id": str(job.job_id), "job_state": state})


def _job_state(job) -> str:
    try:
        return str(job.state)
    except Exception:
        return "UNKNOWN"


def _job_log(job) -> str | None:
    try:
        return (job.stderr() or "") + (job.stdout() or "")
    except Exception:
        return None


class SlurmJobs(_Launcher):
    _EXECUTOR = "slurm"

    def _submit(self, executor, fn, args: list[tuple]) -> list:
        with refusals(self.params):  # a request no node can hold: one line naming the key, not a traceback
            return super()._submit(executor, fn, args)


class LocalJobs(_Launcher):
    """This machine: one submitit job per point or pack (a controller process that enforces timeout_min, sends the
    pre-timeout signal signal_delay_s before it and restarts the run after a checkpoint), at most max_parallel at a
    time. SIGINT / SIGTERM to the launcher cancel the running jobs and submit no more."""

    _EXECUTOR = "local"
    POLL_S = 0.2  # how often the launcher looks for a finished job (a process poll: no measurable cost)

    def setup(self, **kwargs: Any) -> None:
        time_limit_s(self.params)  # a limit no run can use: one line before the sweep starts
        super().setup(**kwargs)

    def _executor(self):
        """submitit's LocalExecutor itself (AutoExecutor does not pass signal_delay_s on to it), with the controller and
        tasks of bench/sweeps/localjob.py: a requeued job restarts up to max_num_timeout times, never vanishes."""
        from bench.sweeps.localjob import LocalExecutor

        p = dict(self.params)
        executor = LocalExecutor(folder=p["submitit_folder"], max_num_timeout=int(p["max_num_timeout"]))
        executor.update_parameters(
            timeout_min=p["timeout_min"],  # bench/sweeps/localjob.py: int(60 * timeout_min) s, as time_limit_s checked
            signal_delay_s=int(p["signal_delay_s"]),
            tasks_per_node=p["tasks_per_node"],
            gpus_per_node=p["gpus_per_node"] or 0,
            **({"setup": list(p["setup"])} if p.get("setup") else {}),
        )
        return executor

    def _submit(self, executor, fn, args: list[tuple]) -> list:
        limit = max(1, int(self.params.get("max_parallel") or 1))
        jobs: list = []
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for params in args:
                while sum(not job.done() for job in jobs) >= limit:
                    time.sleep(self.POLL_S)
                jobs.append(executor.submit(fn, *params))
            while not all(job.done() for job in jobs):
                time.sleep(self.POLL_S)
        except KeyboardInterrupt:
            _cancel(jobs)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        return jobs


def time_limit_s(params) -> int:
    """A local job's time limit in whole seconds (timeout_min may be a fraction of a minute), or one line naming the
    problem: a limit under a second, a negative signal_delay_s, or a pre-timeout signal not inside the limit."""
    timeout_min, delay = params.get("timeout_min"), params.get("signal_delay_s")
    if (
        isinstance(timeout_min, bool)
        or not isinstance(timeout_min, (int, float))
        or not 1 <= 60 * timeout_min < math.inf
    ):
        raise ConfigError(
            f"hydra.launcher.timeout_min={timeout_min!r}: must be a finite number of minutes, at least 1/60 (1 s)"
        )
    limit = int(60 * timeout_min)  # whole seconds: what submitit's local controller counts
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay < limit:
        raise ConfigError(
            f"hydra.launcher.signal_delay_s={delay!r}: must be an integer >= 0 and below the time limit "
            f"(timeout_min={timeout_min} is {limit} s): the run needs the pre-timeout signal before the limit"
        )
    return limit


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"launcher stopped by {signal.Signals(signum).name}")


def _cancel(jobs: list, grace_s: float = 10.0) -> None:
    """Stop the jobs still running (SIGINT to each controller: it interrupts, then kills its run) and wait for them."""
    running = [job for job in jobs if not job.done()]
    log.warning("launcher stopped: cancelling %d running job(s)", len(running))
    for job in running:
        job.cancel(check=False)
    deadline = time.time() + grace_s
    while time.time() < deadline and not all(job.done() for job in running):
        time.sleep(0.1)
    for job in running:
        if not job.done() and job._process is not None:  # the controller did not stop: end it
            job._process.kill()
