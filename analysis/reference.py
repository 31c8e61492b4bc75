"""The authors' published result tables (dayal-kalra/why-warmup, vision/phase-diagrams/resnet_results) -> the run
table of `load_runs`, so that the same phase-diagram and boundary code draws them.

Each .tab file is one run; its name encodes the configuration, e.g.
  eval_cifar-10_WideResNet16_sp_scale0.0_n16_w4_d16_..._xent_augmentTrue_grads_adam_lr0.081920_k1.0_p1.0_Twarm1_T100000_B128_b10.9_b20.999.tab
Optimizer names map to ours: grads_adam -> gi_adam (v0 = g0^2), radam -> radam, sgd -> sgd, and one of the authors'
two Adams becomes `adam`: by default base_adam (their own Adam with v0 = 0, the same code as their GI-Adam apart from
v0, and run over the whole eta_trgt grid); the other keeps a distinct name (optax adam -> adam_optax, or
base_adam -> adam_base). Both give the same boundary in the published data. SGD runs give eta_trgt as lrexp x:
eta_trgt = 2^x / lambda0, i.e. optimizer.lr = 2^x with optimizer.lr_unit = inverse_sharpness, and lambda0 is the
file's sharpness_init.
The 91 published files ship in analysis/reference_data/why-warmup/ with the authors' MIT LICENSE (about 2 MB).
Status: `diverged` when the loss becomes NaN/inf (diverged_step = that step), else `completed`; whether a run
trained is then the usual rule on final_test_acc (below 1.5 / num_classes: did not train).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "reference_data" / "why-warmup"  # shipped with the package (MIT, LICENSE)


def default_dir() -> Path:
    """$WARMUP_BENCH_REFERENCE, else the authors' tables that ship inside the package (analysis/reference_data/)."""
    return Path(os.environ.get("WARMUP_BENCH_REFERENCE") or DATA)


NUM_CLASSES = {"cifar-10": 10, "cifar-100": 100, "tiny-imagenet": 200}
OPTIMIZERS = {"grads_adam": "gi_adam", "radam": "radam", "sgd": "sgd"}
ADAMS = ("base_adam", "adam")

NAME = re.compile(
    r"^(?P<kind>eval|train)_(?P<dataset>[a-z0-9-]+)_(?P<model>[A-Za-z]+\d*)_(?P<param>sp|mup)_scale(?P<scale>[\d.]+)"
    r"_n(?P<depth>\d+)_w(?P<width>\d+)_d\d+_.*?_(?P<loss>xent|mse)_augment(?P<augment>True|False)"
    r"_(?P<optimizer>[a-z_]+?)(?:_lrinit(?P<lr_init>[\d.e-]+))?_(?:lr(?P<lr>[\d.e-]+)|lrexp(?P<lrexp>-?[\d.]+))"
    r"_k(?P<k>[\d.]+)_p(?P<p>[\d.]+)_Twarm(?P<warmup>\d+)_T(?P<steps>\d+)_B(?P<batch>\d+)"
    r"(?:_b1(?P<b1>[\d.]+)_b2(?P<b2>[\d.]+))?(?:_m(?P<momentum>[\d.]+))?.*\.tab$"
)

COLUMNS = {"test_accuracy": "test_acc", "train_accuracy": "train_acc", "loss_step": "train_loss",
           "accuracy_step": "train_acc"}  # fmt: skip


def parse_name(name: str, adam: str = "base_adam") -> dict:
    """The configuration encoded in a file name, as config keys of our run table. Raises ValueError."""
    m = NAME.match(name)
    if not m:
        raise ValueError("file name does not follow the authors' grammar")
    g = m.groupdict()
    opt = g["optimizer"]
    if opt in ADAMS:
        name_ = "adam" if opt == adam else ("adam_optax" if opt == "adam" else "adam_base")
    elif opt in OPTIMIZERS:
        name_ = OPTIMIZERS[opt]
    else:
        raise ValueError(f"unknown optimizer {opt!r}")
    in_units = g["lrexp"] is not None
    row = {
        "model.name": "wrn" if g["model"].startswith("WideResNet") else g["model"].lower(),
        "model.depth": int(g["depth"]),
        "model.width": int(g["width"]),
        "model.param": g["param"],
        "dataset.name": g["dataset"].replace("-", ""),
        "dataset.augment": g["augment"] == "True",
        "loss": g["loss"],
        "optimizer.name": name_,
        "optimizer.lr": 2.0 ** float(g["lrexp"]) if in_units else float(g["lr"]),
        "optimizer.lr_unit": "inverse_sharpness" if in_units else "absolute",
        "schedule.lr_init": float(g["lr_init"] or 0.0),
        "schedule.warmup_steps": int(g["warmup"]),
        "schedule.k": float(g["k"]),
        "schedule.p": float(g["p"]),
        "steps": int(g["steps"]),
        "batch_size": int(g["batch"]),
        "num_classes": NUM_CLASSES.get(g["dataset"], 10),
        "reference.optimizer": opt,
        "reference.kind": g["kind"],
    }
    if g["b1"] is not None:
        row.update({"optimizer.b1": float(g["b1"]), "optimizer.b2": float(g["b2"])})
    if g["momentum"] is not None:
        row["optimizer.momentum"] = float(g["momentum"])
    return row


def read_table(path: Path) -> pd.DataFrame:
    """One file's rows, with our metric names (test_acc, train_loss, ...)."""
    table = pd.read_csv(path, sep="\t", index_col=0)
    if "step" not in table.columns:
        raise ValueError("no step column")
    return table.rename(columns=COLUMNS)


def summarize(table: pd.DataFrame) -> dict:
    """status, stop/diverged step, final and best metrics of one run's table (as in result.json)."""
    loss = table[[c for c in ("train_loss", "test_loss") if c in table]].astype(float)
    bad = ~np.isfinite(loss.to_numpy()).all(axis=1)
    status = "diverged" if bad.any() else "completed"
    last = table.iloc[-1]
    out = {
        "status": status,
        "stop_step": int(table["step"].iloc[-1]),
        "diverged_step": int(table["step"][bad].iloc[0]) if bad.any() else None,
        "final_train_loss": float(last.get("train_loss", math.nan)),
        "final_train_acc": float(last.get("train_acc", math.nan)),
        "final_test_loss": float(last.get("test_loss", math.nan)) if status == "completed" else math.nan,
        "final_test_acc": float(last.get("test_acc", math.nan)) if status == "completed" else math.nan,
        "best_test_acc": float(table["test_acc"].max()) if "test_acc" in table else math.nan,
        "best_test_loss": float(table["test_loss"].min()) if "test_loss" in table else math.nan,
        "lr": float(table["lr"].max()),
    }
    if "num_params" in table:
        out["num_params"] = int(table["num_params"].iloc[0])
    if "sharpness_init" in table:
        out["lambda0"] = float(table["sharpness_init"].iloc[0])
    return out


def load_reference(path: str | Path | None = None, adam: str = "base_adam") -> pd.DataFrame:
    """Every .tab file below `path` (default: default_dir()), one row each, in the shape of `load_runs`. Files whose
    name or content cannot be read are skipped with one warning that counts them."""
    if adam not in ADAMS:
        raise ValueError(f"adam={adam!r}: must be one of {', '.join(ADAMS)}")
    folder = Path(path) if path is not None else default_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no such reference folder: {folder} (set WARMUP_BENCH_REFERENCE or pass --data)")
    rows, skipped = [], []
    for f in sorted(folder.rglob("*.tab")):
        try:
            rows.append({**parse_name(f.name, adam), **summarize(read_table(f)), "run_dir": str(f)})
        except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as e:
            skipped.append(f"{f.name}: {e}")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable reference file(s): " + "; ".join(skipped[:10]), stacklevel=2)
    return pd.DataFrame(rows)


def reference_steps(runs: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """The per-step table of reference runs (rows of load_reference), with the chosen columns of `runs`."""
    frames = [read_table(Path(r["run_dir"])).assign(run_dir=r["run_dir"]) for _, r in runs.iterrows()]
    steps = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if keys and not steps.empty:
        steps = steps.merge(runs[["run_dir", *keys]], on="run_dir", how="left")
    return steps
