"""Packed runs (bench/ensemble.py): K points trained in one process write the run folders the same points write
alone (to float tolerance); a diverged member leaves without stopping the others; unpackable points are refused in
one line before anything is computed; a killed pack resumes from its members' checkpoints."""

import copy
import functools
import json

import pandas as pd
import pytest

from bench import checkpoint, ensemble
from bench.config import validate
from bench.errors import ConfigError
from bench.train import run
from tests.conftest import compose_cfg
from tests.helpers import LAUNCH_KEYS, tiny_run

BASE = tiny_run("model.depth=3", "steps=20", "eval_every=5")
# different eta_trgt, T_wrm, schedule, seed, optimizer (and its state), augmentation, steps
POINTS = [
    ["optimizer.lr=0.05", "schedule.warmup_steps=1", "seed=0"],
    ["optimizer.lr=0.2", "schedule.warmup_steps=8", "seed=1", "optimizer.momentum=0.9", "dataset.flip=true"],
    ["optimizer=adam", "optimizer.lr=0.003", "schedule=cosine", "schedule.warmup_steps=4", "seed=2", "steps=15"],
]
NOT_COMPARED = {*LAUNCH_KEYS, "packed_with"}  # a packed run records its pack


@functools.cache
def _composed(overrides: tuple[str, ...]):
    return compose_cfg(*overrides)


def compose(*overrides: str):
    """compose_cfg, each command line composed once per process (these tests compose the same ones again and
    again), and a copy each time: a test's config is its own."""
    return copy.deepcopy(_composed(overrides))


def assert_same_run(packed_dir, alone_dir):
    a = pd.read_csv(alone_dir / "metrics.csv")
    b = pd.read_csv(packed_dir / "metrics.csv")
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    pd.testing.assert_frame_equal(a, b, rtol=1e-4, atol=1e-6)
    ra = json.loads((alone_dir / "result.json").read_text())
    rb = json.loads((packed_dir / "result.json").read_text())
    assert set(ra) | {"packed_with"} == set(rb)
    for key in set(ra) - NOT_COMPARED:
        if isinstance(ra[key], float):
            assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-6), key
        else:
            assert rb[key] == ra[key], key


def test_packed_points_equal_the_same_points_alone(tmp_path):
    cfgs = [compose(*BASE, *p) for p in POINTS]
    dirs = [tmp_path / f"packed{i}" for i in range(len(cfgs))]
    results = ensemble.run_packed(cfgs, dirs)
    assert [r["status"] for r in results] == ["completed"] * 3
    assert [r["packed_with"] for r in results] == [3, 3, 3]
    assert all(0 <= r["last_train_acc"] <= 1 for r in results)  # recorded by packed members too (the authors' rule)
    assert results[2]["stop_step"] == 15
    for i, cfg in enumerate(cfgs):
        run(cfg, tmp_path / f"alone{i}")
        assert_same_run(dirs[i], tmp_path / f"alone{i}")
        assert (dirs[i] / "config.yaml").read_text() == (tmp_path / f"alone{i}" / "config.yaml").read_text()


def test_a_diverged_member_stops_without_stopping_the_others(tmp_path):
    cfgs = [compose(*BASE, "optimizer.lr=0.05"), compose(*BASE, "optimizer.lr=400", "seed=1")]
    dirs = [tmp_path / "ok", tmp_path / "bad"]
    ok, bad = ensemble.run_packed(cfgs, dirs)
    assert ok["status"] == "completed" and ok["stop_step"] == 20
    assert bad["status"] == "diverged" and bad["stop_step"] == bad["diverged_step"] < 20
    run(cfgs[1], tmp_path / "bad_alone")
    assert_same_run(dirs[1], tmp_path / "bad_alone")
    run(cfgs[0], tmp_path / "ok_alone")
    assert_same_run(dirs[0], tmp_path / "ok_alone")


@pytest.mark.parametrize(
    "other,match",
    [
        ("measure.every=5", "ensemble point 1: measure.every=5: runs that measure the sharpness are never packed"),
        ("schedule=catapult", "ensemble point 1: schedule=catapult: catapult schedules are never packed"),
        ("compile=true", "ensemble point 1: compile=true"),
        ("batch_size=32", "ensemble point 1: batch_size=32 differs from point 0's 64"),
        ("model.width=16", "ensemble point 1: model.width=16 differs from point 0's 32"),
        ("precision=bf16", "ensemble point 1: precision=bf16 differs"),
    ],
)
def test_unpackable_points_are_refused_in_one_line(tmp_path, other, match):
    cfgs = [compose(*BASE), compose(*BASE, other)]
    with pytest.raises(ConfigError, match=match) as e:
        ensemble.run_packed(cfgs, [tmp_path / "a", tmp_path / "b"])
    assert "\n" not in str(e.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists(), "refused before anything is written"


def test_a_bad_point_is_named(tmp_path):
    cfgs = [compose(*BASE), compose(*BASE, "optimizer.lr=-1")]
    with pytest.raises(ConfigError, match=r"^ensemble point 1: optimizer.lr=-1.0: must be > 0$"):
        ensemble.run_packed(cfgs, [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match="run folder .* is given to more than one point"):
        ensemble.run_packed(cfgs[:1] * 2, [tmp_path / "a", tmp_path / "a"])
    assert not (tmp_path / "a").exists()


def test_pack_key_groups_compatible_points():
    key = [ensemble.pack_key(validate(compose(*BASE, *p))) for p in POINTS]
    assert key[0] == key[1] == key[2]
    assert ensemble.pack_key(validate(compose(*BASE, "batch_size=32"))) != key[0]
    assert ensemble.pack_key(validate(compose(*BASE, "measure.every=1"))) is None


def test_a_killed_pack_resumes_and_equals_the_points_alone(tmp_path, monkeypatch):
    cfgs = [compose(*BASE, *p, "checkpoint_every=10") for p in POINTS[:2]]
    dirs = [tmp_path / "p0", tmp_path / "p1"]
    original = ensemble.packed_step
    calls = []

    def crash_after_13(members):
        if len(calls) == 13:
            raise RuntimeError("killed")
        calls.append(1)
        return original(members)

    monkeypatch.setattr(ensemble, "packed_step", crash_after_13)
    with pytest.raises(RuntimeError, match="killed"):
        ensemble.run_packed(cfgs, dirs)
    assert all(json.loads((d / "result.json").read_text())["status"] == "failed" for d in dirs)
    assert all(checkpoint.read(d / "checkpoint.pt")["step"] == 10 for d in dirs)
    monkeypatch.setattr(ensemble, "packed_step", original)
    results = ensemble.run_packed(cfgs, dirs)  # retried: both resume from step 10
    assert [r["status"] for r in results] == ["completed", "completed"]
    for i, cfg in enumerate(cfgs):
        run(cfg, tmp_path / f"alone{i}")
        assert_same_run(dirs[i], tmp_path / f"alone{i}")
    assert ensemble.run_packed(cfgs, dirs)[0]["status"] == "completed", "finished points are skipped"
