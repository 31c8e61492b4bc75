"""Fidelity to the authors' code (issue 14): the divergence rule, the first batch Adam spends, augmented lambda0 and
g0 batches drawn from their own streams."""

from __future__ import annotations

import json
import math

import pytest

import bench
from bench.config import ConfigError, validate
from bench.store import RESULT
from tests.conftest import compose_cfg
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
