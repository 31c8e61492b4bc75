"""External experiment loggers behind one tiny interface: start(cfg, run_dir), log(row), finish(result).

metrics.csv and result.json in the run folder stay the record; a logger only mirrors them. `logger=none` (the
default) does nothing; `logger=wandb` mirrors the resolved config, every metric row and the final result to a
Weights & Biases run whose files live in the run folder (offline by default: no account, no network; `wandb sync`
uploads later). The wandb run id is kept in the run folder, so a resumed run continues the same wandb run.
"""

from __future__ import annotations

import math
import os
import secrets
import string
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

WANDB_ID = "wandb_id.txt"  # in the run folder: the wandb run this run folder logs to


def new_id() -> str:
    """A wandb run id: 8 lowercase letters and digits, as wandb makes them."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


class NoLogger:
    """logger=none: metrics.csv and result.json are the record."""

    def start(self, cfg: DictConfig, run_dir: Path) -> None:
        pass

    def log(self, row: dict) -> None:
        pass

    def finish(self, result: dict | None) -> None:
        pass


class WandbLogger(NoLogger):
    def __init__(self, settings):
        self.settings = settings  # a bench.config.WandbConfig
        self.run = None

    def start(self, cfg: DictConfig, run_dir: Path) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        run_dir = Path(run_dir)
        id_file = run_dir / WANDB_ID
        run_id = id_file.read_text().strip() if id_file.exists() else new_id()
        id_file.write_text(run_id + "\n")
        s = self.settings
        self.run = wandb.init(
            project=s.project,
            entity=s.entity or None,
            group=s.group or None,
            name=s.run_name or run_dir.name,
            tags=list(s.tags),
            mode=s.mode,
            dir=str(run_dir),  # wandb writes <run folder>/wandb/
            id=run_id,
            resume="allow",  # a resumed run folder continues its wandb run
            config=OmegaConf.to_container(cfg, resolve=True),
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )

    def log(self, row: dict) -> None:
        if self.run is not None:
            # commit now: a row left pending until the next log could be lost if the run then fails
            self.run.log({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]), commit=True)

    def finish(self, result: dict | None) -> None:
        """Always called (from a `finally`): the final result goes to the run's summary, the exit code says whether
        the run ended normally (completed or diverged) or not (failed, interrupted)."""
        if self.run is None:
            return
        result = result or {"status": "interrupted"}
        summary = {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None}
        summary = {k: v for k, v in summary.items() if not (isinstance(v, float) and math.isnan(v))}
        try:
            self.run.summary.update(summary)
        finally:
            self.run.finish(exit_code=0 if result.get("status") in ("completed", "diverged") else 1)
            self.run = None


def online_problem(settings, timeout: float = 5.0) -> str | None:
    """Why logger.mode=online cannot work here (no credentials, no network), in one line; None if it can."""
    import netrc
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    host, port = url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)
    offline = "use logger.mode=offline (then `wandb sync` uploads) or logger=none"
    key = os.environ.get("WANDB_API_KEY")
    if not key:
        try:
            key = (netrc.netrc(os.environ.get("NETRC")).authenticators(host) or (None, None, None))[2]
        except (OSError, netrc.NetrcParseError):
            key = None
    if not key:
        return f"logger.mode=online: no wandb credentials for {host} (WANDB_API_KEY or `wandb login`); {offline}"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"logger.mode=online: cannot reach {host}:{port} ({e.strerror or e}); {offline}"
    return None


def build_logger(settings) -> NoLogger:
    """The logger a run's `logger` config asks for."""
    if settings.name == "wandb":
        return WandbLogger(settings)
    return NoLogger()
