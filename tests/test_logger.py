"""logger=wandb, offline: the run's .wandb transaction log holds the config, every metric row and the result."""

import json
import struct
import time
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench.config import validate
from bench.errors import ConfigError
from bench.logger import WANDB_ID
from bench.train import Trainer
from tests.conftest import HANG_S, compose_cfg


def wandb_records(path: Path):
    """The protobuf records of a .wandb file (a LevelDB-style log: 7-byte header, 32 KiB blocks of chunks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb transaction log"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL/FIRST start a record, MIDDLE/LAST continue it
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def _items(items) -> dict:
    return {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in items}


def read_offline_run(run_dir: Path, timeout: float = HANG_S) -> dict:
    """history rows (step -> values), config, summary and exit code of every offline wandb run in a run folder.

    wandb's writer process can still be flushing the transaction log after `finish()` returns: wait until every file
    ends with its exit record (the deadline only bounds a hang: a loaded machine delays the flush)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            out = _read_offline_run(run_dir)
            if out["exits"] == out["files"]:
                return out
        except Exception:  # a record half-written at the moment of reading
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _read_offline_run(run_dir: Path) -> dict:
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert files, f"no offline wandb run under {run_dir}"
    out = {"history": {}, "config": {}, "summary": {}, "exit_code": None, "ids": [], "tags": [], "exits": 0}
    out["files"] = len(files)
    for f in files:
        for r in wandb_records(f):
            kind = r.WhichOneof("record_type")
            if kind == "run":
                out["ids"].append(r.run.run_id)
                out["tags"] += list(r.run.tags)
                out["config"].update({u.key: json.loads(u.value_json) for u in r.run.config.update})
            elif kind == "history":
                out["history"][r.history.step.num] = _items(r.history.item)
            elif kind == "summary":
                out["summary"].update(_items(r.summary.update))
            elif kind == "exit":
                out["exit_code"] = r.exit.exit_code
                out["exits"] += 1
    return out


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any network attempt would fail loudly


@pytest.mark.slow
@pytest.mark.racing
def test_offline_wandb_run_holds_the_logged_metrics(tmp_path, tiny, offline):
    result = bench.run(compose_cfg(*tiny, "logger=wandb", "logger.tags=[unit,test]"), tmp_path)
    logged = read_offline_run(tmp_path)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert sorted(logged["history"]) == [4, 8, 12] == list(metrics["step"])
    for _, row in metrics.iterrows():
        got = logged["history"][int(row["step"])]
        for key in ("lr", "train_loss", "train_acc", "test_loss", "test_acc"):
            assert got[key] == pytest.approx(row[key], rel=1e-12), (row["step"], key)
    assert logged["config"]["model"]["width"] == 32 and logged["config"]["logger"]["mode"] == "offline"
    assert logged["summary"]["status"] == "completed"
    assert logged["summary"]["best_test_acc"] == pytest.approx(result["best_test_acc"])
    assert logged["exit_code"] == 0 and logged["tags"] == ["unit", "test"]
    assert logged["ids"] == [(tmp_path / WANDB_ID).read_text().strip()]


@pytest.mark.slow
@pytest.mark.racing
def test_resumed_run_continues_the_same_wandb_run(tmp_path, tiny, offline, monkeypatch):
    """A run that crashes after a checkpoint and is launched again resumes and logs to the same wandb run."""
    original = Trainer.train_step

    def crash_once(self, s):
        if s == 6:
            raise RuntimeError("preempted")
        return original(self, s)

    monkeypatch.setattr(Trainer, "train_step", crash_once)
    with pytest.raises(RuntimeError):
        bench.run(compose_cfg(*tiny, "logger=wandb", "checkpoint_every=4"), tmp_path)
    run_id = (tmp_path / WANDB_ID).read_text().strip()
    monkeypatch.setattr(Trainer, "train_step", original)
    result = bench.run(compose_cfg(*tiny, "logger=wandb", "checkpoint_every=4"), tmp_path)
    assert result["status"] == "completed"
    assert (tmp_path / WANDB_ID).read_text().strip() == run_id
    logged = read_offline_run(tmp_path)
    assert logged["ids"] == [run_id, run_id]
    assert sorted(logged["history"]) == [4, 8, 12]


@pytest.mark.slow
@pytest.mark.racing
def test_wandb_is_finished_when_the_run_fails(tmp_path, tiny, offline, monkeypatch):
    original = Trainer.train_step

    def boom(self, s):
        if s == 6:
            raise RuntimeError("boom")
        return original(self, s)

    monkeypatch.setattr(Trainer, "train_step", boom)
    with pytest.raises(RuntimeError):
        bench.run(compose_cfg(*tiny, "logger=wandb"), tmp_path)
    logged = read_offline_run(tmp_path)
    assert sorted(logged["history"]) == [4]  # the row logged before the failure
    assert logged["summary"]["status"] == "failed" and "boom" in logged["summary"]["error"]
    assert logged["exit_code"] == 1


def test_wandb_mode_is_checked():
    with pytest.raises(ConfigError, match=r"^logger.mode=sometimes: must be one of online, offline, disabled$"):
        validate(compose_cfg("logger=wandb", "logger.mode=sometimes"))
