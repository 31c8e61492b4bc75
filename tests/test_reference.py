"""The authors' result tables -> the run table: names parsed, statuses, boundaries (docs/paper.md section
7's numbers)."""

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.__main__ import main as analysis_main
from analysis.phase import eta_max, run_state
from analysis.reference import DATA, default_dir, load_reference, parse_name

TABLES = DATA / "resnet_results"
GI = (
    "eval_cifar-10_WideResNet16_sp_scale0.0_n16_w4_d16_biasTrue_relu_I1_J1_xent_augmentTrue_grads_adam_lr0.081920"
    "_k1.0_p1.0_Twarm1_T100000_B128_b10.9_b20.999.tab"
)


# nine of the shipped tables: both Adams at T_wrm 1 and 1024, GI-Adam, optax Adam, muP SGD (one trained, one diverged)
FEW = [
    GI,
    GI.replace("lr0.081920", "lr0.163840"),
    GI.replace("grads_adam", "adam").replace("lr0.081920", "lr0.040960"),
    *[GI.replace("grads_adam", "base_adam").replace("lr0.081920", lr) for lr in ("lr0.020480", "lr0.040960")],
    *[
        GI.replace("grads_adam", "base_adam").replace("lr0.081920", lr).replace("Twarm1_", "Twarm1024_")
        for lr in ("lr0.081920", "lr0.163840")
    ],
    *[
        f"{kind}_cifar-10_WideResNet16_mup_scale1.0_n16_w4_d16_biasTrue_relu_I1_J1_xent_augmentTrue_sgd_lrinit0.0"
        f"_lrexp{x}.0000_k1.0_p0.0_Twarm1_T100000_B128_m0.0_lobpcg.tab"
        for kind, x in (("eval", 6), ("train", 7))
    ],
]


@pytest.fixture(scope="module")
def FIXTURES(tmp_path_factory):
    folder = tmp_path_factory.mktemp("why-warmup")
    for name in FEW:
        shutil.copy(TABLES / name, folder / name)
    return folder


def boundary(runs) -> dict:
    bound = eta_max(runs, by="optimizer.name").dropna()
    return {(r["optimizer.name"], r["schedule.warmup_steps"]): r["eta_max"] for _, r in bound.iterrows()}


def test_file_name_grammar():
    row = parse_name(GI)
    assert row["optimizer.name"] == "gi_adam" and row["reference.optimizer"] == "grads_adam"
    assert row["optimizer.lr"] == 0.08192 and row["optimizer.lr_unit"] == "absolute"
    assert (row["schedule.warmup_steps"], row["steps"], row["batch_size"]) == (1, 100000, 128)
    assert (row["schedule.k"], row["schedule.p"], row["optimizer.b1"], row["optimizer.b2"]) == (1.0, 1.0, 0.9, 0.999)
    assert (row["model.param"], row["model.depth"], row["model.width"], row["num_classes"]) == ("sp", 16, 4, 10)
    assert parse_name(GI.replace("grads_adam", "base_adam"))["optimizer.name"] == "adam"
    assert parse_name(GI.replace("grads_adam", "adam"))["optimizer.name"] == "adam_optax"
    assert parse_name(GI.replace("grads_adam", "adam"), adam="adam")["optimizer.name"] == "adam"
    with pytest.raises(ValueError, match="grammar"):
        parse_name("notes.tab")


def test_fixture_tables_as_runs(FIXTURES):
    runs = load_reference(FIXTURES)
    assert len(runs) == 9
    assert boundary(runs) == {("adam", 1): 0.02048, ("adam", 1024): 0.08192, ("gi_adam", 1): 0.08192}
    gi = runs[runs["run_dir"].str.endswith(GI)].iloc[0]
    table = pd.read_csv(FIXTURES / GI, sep="\t", index_col=0)
    assert gi["final_test_acc"] == table["test_accuracy"].iloc[-1]
    assert gi["best_test_acc"] == table["test_accuracy"].max() and gi["status"] == "completed"
    sgd = runs[runs["optimizer.name"] == "sgd"].set_index("optimizer.lr")
    assert list(sgd.index) == [64.0, 128.0] and set(sgd["optimizer.lr_unit"]) == {"inverse_sharpness"}
    assert sgd.loc[128.0, "status"] == "diverged" and sgd.loc[128.0, "diverged_step"] == 10
    assert sgd.loc[128.0, "lr"] == pytest.approx(128 / sgd.loc[128.0, "lambda0"], rel=1e-6)
    states = run_state(sgd.reset_index()).tolist()
    assert states == ["not trained", "diverged"]


def test_unreadable_files_are_counted(FIXTURES, tmp_path):
    for f in FIXTURES.glob("*grads_adam*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "notes.tab").write_text("x\n")
    (tmp_path / GI.replace("0.081920", "0.040960")).write_text("")
    with pytest.warns(UserWarning, match="skipped 2 unreadable reference file"):
        runs = load_reference(tmp_path)
    assert len(runs) == 2
    with pytest.raises(FileNotFoundError, match="no such reference folder"):
        load_reference(tmp_path / "nope")


def test_cli_draws_and_prints_the_boundary(FIXTURES, tmp_path, capsys):
    analysis_main(["reference", "--data", str(FIXTURES), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "0.02048" in out and "0.08192" in out
    assert (tmp_path / "reference_adam.png").stat().st_size > 10_000
    assert (tmp_path / "reference_sgd.png").stat().st_size > 5_000
    saved = pd.read_csv(tmp_path / "reference_eta_max.csv")
    assert len(saved) == 5 and math.isnan(saved.set_index("optimizer.name").loc["sgd", "eta_max"])


def test_full_published_data_ships_with_the_package(monkeypatch):
    """The default folder is inside the package, with the authors' licence: no file outside the repository."""
    monkeypatch.delenv("WARMUP_BENCH_REFERENCE", raising=False)
    assert default_dir() == DATA and (DATA / "LICENSE").read_text().startswith("MIT License")
    runs = load_reference()
    assert len(runs) == 91
    got = boundary(runs)
    assert got[("adam", 1)] == 0.02048 and got[("adam", 1024)] == 0.08192 and got[("gi_adam", 1)] == 0.08192
    assert got[("radam", 1)] == 0.02048 and got[("radam", 1024)] == 0.04096
    monkeypatch.setenv("WARMUP_BENCH_REFERENCE", "/elsewhere")
    assert default_dir() == Path("/elsewhere")
