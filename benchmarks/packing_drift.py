"""How far a packed run drifts from the same run trained alone, on CPU (the numbers behind the packed-runs line of
the "nothing lost" table): K demo points (FCN-4-512, SGD, MSE, mnist5k) trained alone and as one pack of K, each
compared at steps 256, 1000 and 2000 (the schedule is constant after warmup, so one 2000-step run holds the shorter
ones' steps): the largest relative difference of the logged train loss up to that step, and the largest absolute
difference of the test accuracy at it. Not a speed benchmark (not in `make bench`): run it by hand,
`python -m benchmarks.packing_drift [STEPS]`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench import ensemble
from bench.train import run as run_alone
from benchmarks.common import compose_cfg

RUN = ["model=fcn", "model.depth=4", "model.width=512", "batch_size=128", "eval_every=64", "checkpoint_every=0"]
POINTS = [  # demo grid points that train (the drift of a diverged run is not defined): eta_trgt x T_wrm
    ["optimizer.lr=0.0625", "schedule.warmup_steps=1"],
    ["optimizer.lr=0.125", "schedule.warmup_steps=16"],
    ["optimizer.lr=1", "schedule.warmup_steps=64"],
    ["optimizer.lr=4", "schedule.warmup_steps=256"],
]
AT = (256, 1000, 2000)


def drift(alone: pd.DataFrame, packed: pd.DataFrame, step: int) -> tuple[float, float]:
    """(max relative train-loss difference over the rows up to `step`, |test accuracy difference| at `step`)."""
    a, p = alone[alone["step"] <= step], packed[packed["step"] <= step]
    loss = abs((p["train_loss"].to_numpy() - a["train_loss"].to_numpy()) / a["train_loss"].to_numpy()).max()
    acc = abs(p["test_acc"].iloc[-1] - a["test_acc"].iloc[-1])
    return float(loss), float(acc)


def measure(steps: int = max(AT)) -> pd.DataFrame:
    cfgs = [compose_cfg(*RUN, f"steps={steps}", "threads=1", "device=cpu", *p) for p in POINTS]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for i, c in enumerate(cfgs):
            run_alone(c, root / f"alone{i}")
        ensemble.run_packed(cfgs, [root / f"packed{i}" for i in range(len(cfgs))])
        rows = []
        for i, p in enumerate(POINTS):
            alone, packed = (pd.read_csv(root / f"{kind}{i}" / "metrics.csv") for kind in ("alone", "packed"))
            for step in (s for s in AT if s <= steps):
                loss, acc = drift(alone, packed, step)
                rows.append({"point": " ".join(p), "step": step, "train_loss_rel": loss, "test_acc_abs": acc})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    table = measure(int(sys.argv[1]) if len(sys.argv) > 1 else max(AT))
    print(table.to_string(index=False))
    print(table.groupby("step")[["train_loss_rel", "test_acc_abs"]].max().to_string())
