"""Packed sweeps: with hydra.launcher.ensemble=K the launchers (bench/sweeps/launcher.py, local and SLURM alike) group a
sweep's compatible points into packs of at most K and train each pack in one job with bench.ensemble.run_packed.

Grouping (in the launcher, before any job starts): points with the same `bench.ensemble.pack_key` (model, dataset,
batch size, loss, device, numerics; eta_trgt, T_wrm, schedule, optimizer, seed, steps, ... may differ) fill packs
of at most K in sweep order. A point that is never packed (measure.every > 0, the catapult schedules, compile=true),
one whose config does not validate, and a pack of one run alone, exactly as with ensemble=1.

Per point, a pack keeps what an unpacked job guarantees: its own run folder with Hydra's .hydra/ files and
result.json; the identity check (a folder of another config: that point fails, nothing is written into it); the
finished-point skip; the per-run lock (a point locked by another launch is not trained and returns "running
elsewhere"); and one JobReturn, the objective launch.py's task function returns (bench.objective), in sweep order.
The pack's log goes to every member's <job name>.log. A pack runs bench's training itself, not the task function:
packing is for this app's launch.py.

Failures stay with their point: when the pack raises while it trains, the members that had not finished are
retrained alone, one after the other in the same job, from their checkpoints (checkpoint_every), so each records
its own outcome; a point that fails alone fails in its own folder only.

Timeout and preemption: a pack checkpoints like a run: at the pre-timeout signal (SIGUSR2) or SIGTERM every active
member saves its checkpoint.pt, and the job is requeued with the same points (`PackJob.checkpoint`); the requeued
job skips the members that finished and resumes the others from their checkpoints, together.
"""

from __future__ import annotations

import copy
import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, env_override, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from bench.errors import ConfigError
from bench.runfolder import point_folder
from bench.runfolder.store import save_config

log = logging.getLogger(__name__)


def ensemble_size(value: Any) -> int:
    """hydra.launcher.ensemble as an int >= 1, or one line naming the problem."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"hydra.launcher.ensemble={value!r}: must be an integer >= 1 (the most points a job packs)")
    return value


def group(keys: list[str | None], k: int) -> list[list[int]]:
    """The points' indices as jobs: equal keys fill packs of at most k in sweep order; a None key runs alone."""
    jobs: list[list[int]] = []
    filling: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is None or k == 1:
            jobs.append([i])
            continue
        pack = filling.get(key)
        if pack is None or len(pack) == k:
            pack = filling[key] = []
            jobs.append(pack)
        pack.append(i)
    return jobs


def point_key(sweep_cfg: DictConfig) -> str | None:
    """The pack key of a sweep point (composed with its hydra node); None: it runs alone."""
    from bench.config import validate
    from bench.ensemble import pack_key
    from bench.sweeps.preflight import task_config

    try:
        return pack_key(validate(task_config(sweep_cfg)))
    except Exception:  # a point that does not validate runs alone: its job reports why, as unpacked
        return None


class PackJob:
    """The callable a packed sweep submits: one job, a list of points (each the arguments of the launcher's own
    per-point job). One point runs as the launcher runs it unpacked; several train as one pack."""

    def __init__(self, launcher) -> None:
        self.launcher = launcher

    def __call__(self, points: list[tuple]) -> list[JobReturn]:
        if len(points) == 1:
            return [self.launcher(*points[0])]
        self.launcher.set_threads()
        return train_pack(self.launcher, points)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this at the pre-timeout signal (after the members have saved their checkpoints): requeue
        the same points; the new attempt skips the finished ones and resumes the rest."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


@dataclass
class Point:
    """One member of a pack job, as Hydra's run_job would prepare it."""

    config: DictConfig  # with its hydra node
    task: DictConfig  # what the task function would receive
    dir: Path
    ret: JobReturn
    result: dict | None = None
    error: BaseException | None = field(default=None)


def train_pack(launcher, points: list[tuple]) -> list[JobReturn]:
    """Inside the job: prepare each point as run_job would, train the pack, return one JobReturn per point."""
    import submitit

    Singleton.set_state(points[0][4])
    setup_globals()
    job_id = submitit.JobEnvironment().job_id
    members = [_prepare(launcher, overrides, num, job_id) for overrides, _, num, _, _ in points]
    HydraConfig.instance().set_config(members[0].config)
    _configure_logging(members)
    callbacks = launcher.hydra_context.callbacks
    with env_override(members[0].config.hydra.job.env_set):
        for m in members:
            callbacks.on_job_start(config=m.config, task_function=launcher.task_function)
        with ExitStack() as locks:
            train_members(members, locks)
    return [_finish(m, callbacks) for m in members]


def _prepare(launcher, overrides: list[str], num: int, job_id: str) -> Point:
    """What hydra.core.utils.run_job does before it calls the task function: the point's config, its folder and
    .hydra/ files, its JobReturn."""
    from bench.sweeps.preflight import task_config

    config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(config.hydra.job):
        config.hydra.job.id = job_id
        config.hydra.job.num = num
    HydraConfig.instance().set_config(config)
    out = point_folder(config, multirun=True)
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(out)
    HydraConfig.instance().set_config(config)
    task = task_config(config)
    ret = JobReturn(overrides=list(OmegaConf.to_container(config.hydra.overrides.task)), cfg=task)
    ret.hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
    ret.working_dir = os.getcwd()
    out.mkdir(parents=True, exist_ok=True)
    if config.hydra.output_subdir is not None:
        meta = out / str(config.hydra.output_subdir)
        save_config(task, "config.yaml", meta)
        save_config(ret.hydra_cfg, "hydra.yaml", meta)
        save_config(config.hydra.overrides.task, "overrides.yaml", meta)
    return Point(config, task, out, ret)


def _configure_logging(members: list[Point]) -> None:
    """Hydra's job logging, once for the pack (its file in the first member's folder), and the same file handler
    for every other member: each member's <job name>.log holds the pack's log."""
    first = members[0].config
    configure_log(first.hydra.job_logging, first.hydra.verbose)
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    if not files:
        return
    name = Path(files[0].baseFilename).name
    for m in members[1:]:
        handler = logging.FileHandler(m.dir / name)
        handler.setFormatter(files[0].formatter)
        handler.setLevel(files[0].level)
        root.addHandler(handler)


def train_members(members: list[Point], locks: ExitStack) -> None:
    """Check each point's folder and take its lock; train the points held as one pack; on a pack failure retrain its
    unfinished points alone. Sets each point's result or error."""
    from bench.config import validate
    from bench.ensemble import run_packed
    from bench.sweeps.lock import RunLock, not_ours
    from bench.runfolder.check import check_run_folder, same_device_config

    held = []
    for i, m in enumerate(members):
        try:
            m.task = same_device_config(m.dir, m.task)  # device=auto and the device it ran on: one run
            typed = validate(m.task)
            check_run_folder(m.dir, m.task)  # another config's folder: this point fails, its folder untouched
            if any(m.dir.resolve() == other.dir.resolve() for other in members[:i]):
                raise ConfigError(
                    f"{m.dir} is also another point's folder in this pack: hydra.sweep.subdir must "
                    "name each point (not ${hydra.job.id}, which a pack's points share)"
                )
        except Exception as e:
            m.error = e
            continue
        lock = locks.enter_context(RunLock(m.dir))
        if lock.held:
            held.append(m)
        else:
            m.result = not_ours(m.dir, lock, typed.force)
    if len(held) > 1:
        try:
            for m, result in zip(held, run_packed([m.task for m in held], [m.dir for m in held], False)):
                m.result = result
            return
        except ConfigError as e:  # the points cannot be packed after all (the grouping should have kept them apart)
            log.error("pack of %d points refused (%s): they run alone", len(held), e)
        except Exception as e:
            log.error(
                "pack of %d points failed (%s: %s): its unfinished points are retrained alone",
                len(held),
                type(e).__name__,
                e,
            )
    _alone(held)


def _alone(points: list[Point]) -> None:
    """Each point as bench.run trains it (already holding its lock): a finished one is skipped, the others resume
    from their checkpoints; an exception is that point's own."""
    from bench.train import run

    for m in points:
        try:
            m.result = run(m.task, m.dir)
        except Exception as e:
            m.error = e


def _finish(m: Point, callbacks) -> JobReturn:
    from bench import objective

    ret = m.ret
    if m.error is not None:
        ret.return_value, ret.status = m.error, JobStatus.FAILED
    else:
        ret.return_value, ret.status = objective(m.task, m.result or {}), JobStatus.COMPLETED
    ret.task_name = JobRuntime.instance().get("name")
    callbacks.on_job_end(config=m.config, job_return=ret)
    return ret
