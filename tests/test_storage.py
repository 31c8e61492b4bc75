"""The run folder's files on a shared machine: they follow the umask; a full disk or a read-only folder is one line,
a failed result.json when the disk allows it, and a sweep's other points go on.

Tests run as root, for whom permission bits do not stop writes: the machine's refusals are injected as the OSError
the kernel gives (ENOSPC, EROFS) at the one place run files are written (bench.runfolder.atomic_write's temp file)."""

import errno
import json
import os
import stat
import tempfile

import pytest

import bench
from bench import runfolder
from bench.runfolder import StorageError
from tests.conftest import compose_cfg
from tests.helpers import TINY


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        bench.run(compose_cfg(*TINY, "checkpoint_every=4"), tmp_path / "run")
        mkstemp_mode = stat.S_IMODE(os.stat(tempfile.mkstemp(dir=tmp_path)[1]).st_mode)
    finally:
        os.umask(old)
    assert mkstemp_mode == 0o600, "what the atomic writer starts from"
    for name in ("config.yaml", "metrics.csv", "result.json"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name
    os.umask(0o077)
    try:
        runfolder.atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600


def refuse_writes(monkeypatch, err: int, names: tuple[str, ...]):
    """The kernel refuses to create the named run files (err: ENOSPC, EROFS)."""
    mkstemp = tempfile.mkstemp

    def refusing(*args, prefix="", **kwargs):
        if any(prefix.startswith(f".{n}.") for n in names):
            raise OSError(err, os.strerror(err))
        return mkstemp(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(runfolder.tempfile, "mkstemp", refusing)


def test_disk_full_is_one_line_and_a_failed_result(tmp_path, monkeypatch):
    """The disk fills up while the run writes its metrics: one line naming the file and the cause, no chained
    traceback, and a failed result.json (small, written when the disk allows)."""
    refuse_writes(monkeypatch, errno.ENOSPC, ("metrics.csv",))
    with pytest.raises(StorageError) as info:
        bench.run(compose_cfg(*TINY), tmp_path)
    e = info.value
    assert str(e) == f"cannot write {tmp_path / 'metrics.csv'}: the disk is full (or the quota is spent) (ENOSPC)"
    assert e.__cause__ is None and e.__suppress_context__
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "failed" and result["error_type"] == "disk_full" and result["error"] == str(e)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_read_only_folder_is_one_line(tmp_path, monkeypatch):
    refuse_writes(monkeypatch, errno.EROFS, ("config.yaml", "metrics.csv", "result.json", "traceback.txt"))
    with pytest.raises(StorageError, match="the folder is read-only or not writable \\(EROFS\\)$") as info:
        bench.run(compose_cfg(*TINY), tmp_path)
    assert info.value.kind == "read_only"
    assert not (tmp_path / "result.json").exists()


@pytest.mark.parametrize("where", ["metrics.csv", ".hydra/config.yaml"])
def test_sweep_goes_on_when_one_point_hits_a_full_disk(tmp_path, monkeypatch, where):
    """A sweep of two points (in this process, as launch.py runs it) in which the disk is "full" for the first point
    only (its folder name has lr=0.1), while it trains (metrics.csv) or before its run starts (Hydra's own
    .hydra/config.yaml): that point fails with one line, the other completes, the multirun ends with the sweep's
    one-line summary (what launch.py prints: no traceback), and no empty .hydra/config.yaml is left."""
    from omegaconf import OmegaConf

    from bench.sweeps.summary import SweepEnded
    from tests.conftest import multirun

    mkstemp = tempfile.mkstemp
    folder, name = os.path.split(where)

    def refusing(*args, dir=None, **kwargs):
        full = "lr=0.1" in str(dir) and str(dir).endswith(folder) and f".{name}." in kwargs.get("prefix", "")
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(runfolder.tempfile, "mkstemp", refusing)
    sweep = tmp_path / "sweep"
    with pytest.raises(SweepEnded) as info:
        multirun("optimizer.lr=0.1,0.2", *TINY, f"hydra.sweep.dir={sweep}")
    assert str(info.value) == (
        "error: the sweep ended with failed points: 2 points: 1 completed, 0 diverged, 1 failed, "
        f"0 skipped (running elsewhere), 0 unfinished; see: python -m analysis status {sweep}"
    )
    (first,) = sweep.glob("*lr=0.1*")
    result = json.loads((first / "result.json").read_text())
    assert result["status"] == "failed" and result["error_type"] == "disk_full"
    assert result["error"] == f"cannot write {first / where}: the disk is full (or the quota is spent) (ENOSPC)"
    assert not (first / where).exists() or (first / where).stat().st_size > 0, "no empty file left"
    (second,) = sweep.glob("*lr=0.2*")
    assert json.loads((second / "result.json").read_text())["status"] == "completed", "the other point ran"
    assert OmegaConf.load(second / ".hydra/config.yaml").optimizer.lr == 0.2
    e = info.value
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__), "no chained traceback"
