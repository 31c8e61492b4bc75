"""python -m analysis trajectories: per-step loss, sharpness and threshold of a sweep, one curve per T_wrm."""

import pandas as pd
import pytest

import bench
from analysis.__main__ import main
from tests.conftest import compose_cfg
from tests.helpers import tiny_run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    tiny = tiny_run("steps=10", "eval_every=5")
    for t in (1, 8):
        bench.run(compose_cfg(*tiny, f"schedule.warmup_steps={t}", "measure.every=2"), root / f"warmup={t}")
    return root


def test_trajectories_plot_and_table(sweep, capsys):
    main(["trajectories", str(sweep)])
    out = capsys.readouterr().out
    assert (sweep / "trajectories.png").stat().st_size > 10_000
    traj = pd.read_csv(sweep / "trajectories.csv")
    assert sorted(traj["schedule.warmup_steps"].unique()) == [1, 8]
    measured = traj.dropna(subset=["sharpness"])
    assert sorted(measured["step"].unique()) == [1, 3, 5, 7, 9]
    # the threshold is 2/eta_t: it falls during the warmup and is flat without it
    assert measured["threshold"].tolist() == pytest.approx((2 / measured["lr"]).tolist())
    assert "ratio_last" in out and "trajectories.png" in out


def test_no_sharpness_is_one_line(tmp_path):
    bench.run(compose_cfg("model.width=8", "model.depth=1", "steps=2", "eval_every=1", "device=cpu"), tmp_path / "r")
    with pytest.raises(SystemExit, match="measure.every"):
        main(["trajectories", str(tmp_path)])
