"""A run folder's lifecycle, the same for a run alone (`bench.train.run`) and a member of a pack (bench/ensemble.py):
skipped when already finished; else config.yaml and the logger, then either result.json (completed or diverged,
with the run identity and environment) and the checkpoint removed, or the failure (traceback.txt and a failed
result.json); the logger is closed whichever way the run ends."""

from __future__ import annotations

import logging
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.config import Config
from bench.failure import describe_failure
from bench.logger import NoLogger, build_logger
from bench.progress import run_line
from bench.runfolder import TRACEBACK, StorageError, run_identity
from bench.runfolder.store import RunStore, environment, finish, finished_result

log = logging.getLogger("bench.train")  # the run lines keep the logger name they have always had


class Lifecycle:
    """What one run writes into its folder, around its training."""

    def __init__(self, cfg: DictConfig, typed: Config, run_dir: str | Path):
        self.cfg, self.typed = cfg, typed
        self.store = RunStore(Path(run_dir))
        self.identity = run_identity(cfg)  # checkpoint.pt and result.json carry it
        self.logger: NoLogger = NoLogger()
        self.started = time.time()
        self.result: dict | None = None  # once finished, failed or skipped
        self._open = False  # the logger is started and not yet closed

    def start(self) -> dict | None:
        """The result of a run already finished in this folder (nothing to do: force=true reruns), else None once
        config.yaml is written and the logger started (a logger that cannot start is the run's failure)."""
        if (done := finished_result(self.store, self.typed.force)) is not None:
            self.result = done
            return done
        self.store.write_config(OmegaConf.to_yaml(self.cfg, resolve=True))
        self.logger, self._open = build_logger(self.typed.logger), True
        with self.recording():
            self.logger.start(self.cfg, self.store.dir)
        return None

    @contextmanager
    def recording(self):
        """What is raised inside ends the run (`stop`), then goes on."""
        try:
            yield self
        except BaseException as e:
            self.stop(e)
            raise

    def stop(self, e: BaseException | None) -> None:
        """The run ends without a result (called while `e` is being handled): an Exception is its failure; a stop
        that is not one (SIGTERM's Terminated, Ctrl-C), or None, only closes the logger: the folder is left as it is
        (its checkpoint resumes)."""
        if isinstance(e, Exception):
            self.fail(e)
        self.close(None)

    def finish(self, result: dict) -> dict:
        """result.json of a completed or diverged run, then its checkpoint removed (no longer needed)."""
        result.update(run_identity=self.identity, **environment())
        try:
            self.store.write_result(result)
            finish(self.store)
        finally:
            self.close(result)  # even when the disk refuses: wandb is always closed
        self.result = result
        log.info("%s -> %s", run_line(result, self.store.dir), self.store.dir)
        return result

    def fail(self, e: Exception) -> dict:
        """traceback.txt and the failed result.json (called while `e` is being handled)."""
        result = {
            "status": "failed",
            **describe_failure(e),
            "run_identity": self.identity,
            "seed": self.typed.seed,
            "wall_time_s": time.time() - self.started,
            **environment(),
        }
        record_failure(self.store, result, traceback.format_exc())
        self.close(result)
        self.result = result
        log.error(run_line(result, self.store.dir))
        return result

    def close(self, result: dict | None) -> None:
        """The logger's end, once."""
        if self._open:
            self._open = False
            self.logger.finish(result)


def record_failure(store: RunStore, result: dict, trace: str) -> None:
    """traceback.txt and the failed result.json, as far as the disk allows (a full disk may take either)."""
    for write in (lambda: store.write_text(TRACEBACK, trace), lambda: store.write_result(result)):
        try:
            write()
        except StorageError as e:
            log.error("%s", e)
