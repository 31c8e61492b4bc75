"""Progress output: a bar only for a person at a terminal, one line per finished run."""

import logging
import sys

import bench
from bench.progress import interactive, progress_bar, run_line
from tests.conftest import compose_cfg


class Terminal:
    def isatty(self):
        return True

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def test_bar_only_on_a_terminal_outside_slurm(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert interactive() and not progress_bar(10).disable
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert not interactive() and progress_bar(10).disable


def test_quiet_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar(10).disable


def test_one_line_per_finished_run(tmp_path, tiny, caplog):
    with caplog.at_level(logging.INFO, logger="bench.train"):
        result = bench.run(compose_cfg(*tiny, "optimizer.lr=1000"), tmp_path / "optimizer.lr=1000")
    lines = [r.getMessage() for r in caplog.records if "best test acc" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith(f"optimizer.lr=1000: diverged at step {result['diverged_step']}, best test acc nan, ")
    line = run_line({"status": "completed", "best_test_acc": 0.91234, "wall_time_s": 12.34}, tmp_path / "lr=0.5")
    assert line == "lr=0.5: completed, best test acc 0.9123, 12.3s"
