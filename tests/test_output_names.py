"""One name per concept in every output file: the method is `schedule.name` (`optimizer.name` for the optimizer),
T_wrm `schedule.warmup_steps`, eta_trgt `optimizer.lr` and the boundary `eta_max`, as load_runs' tables name them
(bench/runfolder/ `column`), in status, the phase diagram's CSVs, boundary.csv and the reference tables."""

import csv
import shutil
from pathlib import Path

import pytest

from analysis.__main__ import main as analysis_main
from analysis.reference import default_dir
from analysis.status import sweep_status
from tests.sweeps import two_methods_sweep

# names a concept has had in some output file, or could have: never a column (`lr`, result.json's absolute eta_trgt,
# is another concept than optimizer.lr, which is in units of 1/lambda0 for optimizer.lr_unit=inverse_sharpness)
OTHER_NAMES = {"schedule", "optimizer", "method", "warmup", "warmup_steps", "T_wrm", "eta_trgt", "eta"}
REFERENCE_TABLES = ("augmentTrue_base_adam_lr0.005120_k1.0_p1.0_Twarm1_", "augmentTrue_sgd_lrinit0.0_lrexp1.0000")


def header(path: Path) -> list[str]:
    with path.open() as f:
        return next(csv.reader(f))


@pytest.mark.slow
def test_status_phase_boundary_and_reference_name_each_concept_the_same_way(tmp_path_factory, tmp_path):
    sweep = two_methods_sweep(tmp_path_factory)
    analysis_main(["phase", str(sweep), "--out", str(tmp_path / "phase")])
    data = tmp_path / "tables"
    data.mkdir()
    for table in default_dir().rglob("*.tab"):
        if any(part in table.name for part in REFERENCE_TABLES):
            shutil.copy(table, data)
    analysis_main(["reference", "--data", str(data), "--out", str(tmp_path / "reference")])
    headers = {
        "status": list(sweep_status(sweep).columns),
        "phase_best_test_acc.csv": header(tmp_path / "phase" / "phase_best_test_acc.csv"),
        "eta_max.csv": header(tmp_path / "phase" / "eta_max.csv"),
        "boundary.csv": header(sweep / "boundary.csv"),
        "reference_eta_max.csv": header(tmp_path / "reference" / "reference_eta_max.csv"),
        "reference_runs.csv": header(tmp_path / "reference" / "reference_runs.csv"),
    }
    for name, columns in headers.items():
        assert not OTHER_NAMES & set(columns), f"{name}: {sorted(OTHER_NAMES & set(columns))} ({columns})"
        assert "schedule.warmup_steps" in columns, name
    for name in ("status", "phase_best_test_acc.csv", "eta_max.csv", "boundary.csv"):  # the two methods
        assert "schedule.name" in headers[name], (name, headers[name])
    for name in ("status", "phase_best_test_acc.csv", "reference_runs.csv"):
        assert "optimizer.lr" in headers[name], name
    for name in ("eta_max.csv", "boundary.csv", "reference_eta_max.csv"):
        assert {"eta_max", "lower_bound"} <= set(headers[name]), name
    assert "optimizer.name" in headers["reference_eta_max.csv"]
