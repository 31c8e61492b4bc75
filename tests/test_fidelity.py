"""Fidelity to the authors' code (issue 14): the divergence rule, the first batch Adam spends, augmented lambda0 and
g0 batches drawn from their own streams."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hydra.errors import HydraException

import bench
from bench.config import validate
from bench.data import EpochSampler
from bench.data.augment import Augment
from bench.errors import ConfigError
from bench.runfolder import RESULT
from bench.runfolder.store import RunStore
from bench.seeding import generator
from bench.sharpness import sharpness
from bench.train import Trainer
from tests.conftest import compose_cfg
from tests.helpers import tiny_run
from tests.test_experiments import CPU, FULL, compose_preset

# --- diverge_factor: inf = NaN/inf only (the authors), 1e5 by default -----------------------------------------


@pytest.mark.parametrize("name", FULL + CPU)
def test_paper_presets_use_the_authors_divergence_rule(name):
    factor = compose_preset(name).diverge_factor
    assert factor == (math.inf if name in FULL else 1e5), name


def test_default_divergence_factor_and_bad_values():
    assert compose_cfg().diverge_factor == 1e5  # make bench's divergence benchmark composes the default
    for bad in ("1", "0.5", "nan", "-inf"):
        with pytest.raises(ConfigError, match="diverge_factor"):
            validate(compose_cfg(f"diverge_factor={bad}"))


def test_infinite_factor_stops_on_nan_only(tmp_path, tiny):
    """lr=3 passes 1.5 x the initial loss (test_train's divergence_by_loss_multiple) but stays finite: with inf the run
    completes; lr=1000 reaches inf/NaN and still diverges. config.yaml keeps .inf, result.json would say "inf"."""
    finite = bench.run(compose_cfg(*tiny, "optimizer.lr=3", "diverge_factor=inf"), tmp_path / "a")
    assert finite["status"] == "completed"
    assert "diverge_factor: .inf" in (tmp_path / "a" / "config.yaml").read_text()
    blown = bench.run(compose_cfg(*tiny, "optimizer.lr=1000", "diverge_factor=inf"), tmp_path / "b")
    assert blown["status"] == "diverged"
    assert json.loads((tmp_path / "b" / RESULT).read_text())["status"] == "diverged"


# --- lambda0 and g0 on augmented batches, from their own streams --------------------------------------------------

AUG = ("dataset.flip=true", "dataset.crop_padding=4", "dataset.mixup=true")
SMALL = tiny_run("model.width=16", "steps=4", "eval_every=2")
LAMBDA0 = ("optimizer.lr_unit=inverse_sharpness", "optimizer.lr=2", "optimizer.lambda0_batches=3")


def trainer(tmp_path, *overrides) -> Trainer:
    return Trainer(validate(compose_cfg(*SMALL, *overrides)), RunStore(tmp_path))


def hand_batches(data, seed: int, n: int, size: int, stream: str, flags=AUG):
    """The lambda0 batches as documented: n index sets from the seed's "lambda0" stream (drawn first), then the run's
    augmentation from its own "lambda0_augment" stream, in order."""
    g = generator(seed, "lambda0")
    idxs = [torch.randperm(len(data.x_train), generator=g)[:size] for _ in range(n)]
    augment = Augment(compose_cfg(*flags).dataset, seed, torch.device("cpu"), stream=stream)
    return [augment(data.x_train[i], data.y_train[i]) for i in idxs]


def test_lambda0_is_measured_on_the_augmented_batches(tmp_path):
    """lambda0 (Lanczos, tol 1e-4) equals the mean top eigenvalue of the same augmented batches built by hand and
    solved in float64 to 1e-9; the clean batches give a different lambda0 (mixup moves it)."""
    tr = trainer(tmp_path, *AUG, *LAMBDA0)
    batches = hand_batches(tr.data, 0, 3, 64, "lambda0_augment")
    exact = [sharpness(tr.model, tr.loss_fn, x, y, tol=1e-9, float64=True, generator=gen()).value for x, y in batches]
    assert tr.extras["lambda0"] == pytest.approx(sum(exact) / 3, rel=1e-3)
    assert tr.extras["lambda0_converged"] is True
    assert tr.lr == pytest.approx(2 / tr.extras["lambda0"])
    clean = trainer(tmp_path / "clean", *LAMBDA0).extras["lambda0"]
    assert abs(clean / tr.extras["lambda0"] - 1) > 0.02  # farther than the solvers' tolerances
    print(f"lambda0 clean {clean:.4g}, augmented (flip, crop, mixup) {tr.extras['lambda0']:.4g}")


def sampler_and_augment_state(tr: Trainer):
    return tr.sampler.state_dict()["generator"], tr.sampler.state_dict()["pos"], tr.augment.state_dict()["generator"]


def test_measuring_lambda0_leaves_the_training_streams_alone(tmp_path):
    """Measuring lambda0 (which draws batches and augments them) leaves the data order and the training augmentation
    where an absolute-rate run has them: the first training batches, augmented, are the same tensors."""
    measured, plain = trainer(tmp_path / "a", *AUG, *LAMBDA0), trainer(tmp_path / "b", *AUG)
    for a, b in zip(sampler_and_augment_state(measured), sampler_and_augment_state(plain)):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    for _ in range(3):
        ia, ib = measured.sampler.next(), plain.sampler.next()
        xa, ya = measured.augment(measured.data.x_train[ia], measured.data.y_train[ia])
        xb, yb = plain.augment(plain.data.x_train[ib], plain.data.y_train[ib])
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_gi_adam_g0_is_the_gradient_of_the_augmented_first_batch(tmp_path):
    tr = trainer(tmp_path, *AUG, "optimizer=gi_adam")
    first = EpochSampler(len(tr.data.x_train), 64, generator(0, "data"), tr.device).next()
    augment = Augment(compose_cfg(*AUG).dataset, 0, torch.device("cpu"), stream="g0_augment")
    x, y = augment(tr.data.x_train[first], tr.data.y_train[first])
    params = list(tr.model.parameters())
    g0 = torch.autograd.grad(tr.loss_fn(tr.model(x), y), params)
    for p, g in zip(params, g0):
        torch.testing.assert_close(tr.optimizer.state[p]["exp_avg_sq"], g**2)
    clean = tr.loss_fn(tr.model(tr.data.x_train[first]), tr.data.y_train[first])
    g_clean = torch.autograd.grad(clean, params)
    assert not torch.allclose(g0[0], g_clean[0])  # the augmentation did change g0


@pytest.mark.parametrize("name", ["adam", "radam", "gi_adam", "ri_adam"])
def test_spend_first_batch(tmp_path, name):
    """spend_first_batch=true: training starts on the data order's second batch, for every Adam variant, with the
    same training augmentation whatever the optimizer; false: on the first (gi/ri_adam: g0 from their own stream)."""
    reference = EpochSampler(5000 - 1000, 64, generator(0, "data"), torch.device("cpu"))
    first, second = reference.next(), reference.next()
    plain = trainer(tmp_path / "sgd", *AUG)
    for spend, expected in ((True, second), (False, first)):
        tr = trainer(tmp_path / str(spend), *AUG, f"optimizer={name}", f"optimizer.spend_first_batch={spend}")
        assert torch.equal(tr.sampler.next(), expected)
        assert torch.equal(
            torch.as_tensor(tr.augment.state_dict()["generator"]), plain.augment.state_dict()["generator"]
        )
        if name in ("gi_adam", "ri_adam"):
            assert tr.extras["g0_norm"] > 0


def test_spend_first_batch_defaults_and_paper_presets():
    """Defaults keep what the harness did (gi/ri_adam spend the batch, adam/radam do not); every Adam-family run of
    the paper presets spends it, as the authors' scripts do for adam, radam and their GI-Adam alike."""
    for name, default in (("adam", False), ("radam", False), ("gi_adam", True), ("ri_adam", True)):
        assert validate(compose_cfg(f"optimizer={name}")).optimizer.spend_first_batch is default
    for preset in ("fig2_fcn_adam_mechanisms", "fig4_transformer_adam", "fig6_gi_adam_mechanisms", "app_wrn_adam"):
        for name in ("adam", "radam", "gi_adam", "ri_adam"):
            cfg = validate(compose_preset(preset, f"optimizer={name}"))
            assert cfg.optimizer.spend_first_batch is True, (preset, name)
    with pytest.raises(HydraException, match="spend_first_batch"):
        compose_cfg("optimizer=sgd", "optimizer.spend_first_batch=true")  # SGD has no such key: refused


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
