"""The notebooks in analysis/notebooks/ run headless (nbclient, the venv's own python3 kernel) on a fixture sweep of two
warmup methods and the authors' tables shipped in analysis/reference_data/, and show what they claim to show: the two
methods never pooled, a relative WARMUP_BENCH_SWEEP read from the repository root wherever the kernel starts."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from analysis import eta_max, load_runs
from tests.sweeps import two_methods_sweep

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "analysis" / "notebooks"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return two_methods_sweep(tmp_path_factory)


def execute(name: str, cwd: Path = ROOT) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started in `cwd` (Jupyter starts it in the notebook's folder)."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # kernel "python3" is ipykernel's own spec: jupyter_client starts it with this interpreter, nothing to install
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb, kind: str) -> list:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if kind in data:
                found.append(data[kind])
            elif kind == "text/plain" and out.get("output_type") == "stream":
                found.append(out["text"])
    return found


@pytest.mark.slow
def test_phase_diagrams_notebook(sweep, monkeypatch):
    monkeypatch.setenv("WARMUP_BENCH_SWEEP", os.path.relpath(sweep, ROOT))  # relative: from the repository root
    nb = execute("phase_diagrams", cwd=NOTEBOOKS)
    assert len(outputs(nb, "image/png")) >= 3
    text = "\n".join(outputs(nb, "text/plain"))
    assert "8 runs; configs differ in: schedule.name" in text
    bound = eta_max(load_runs(sweep))
    assert set(bound["schedule.name"]) == {"linear", "catapult"}
    assert bound.to_string() in text  # the boundary table the notebook shows is eta_max's: one row per method
    states = outputs(nb, "text/html")[0]  # the state table: a row per method and T_wrm, never pooled
    assert states.count("catapult") >= 1 and states.count("linear") >= 1 and "schedule.name" in states


@pytest.mark.slow
def test_mechanisms_notebook(sweep, monkeypatch):
    monkeypatch.setenv("WARMUP_BENCH_SWEEP", os.path.relpath(sweep, ROOT))
    nb = execute("mechanisms", cwd=NOTEBOOKS)
    assert len(outputs(nb, "image/png")) >= 2
    assert "configs differ in: schedule.name" in "\n".join(outputs(nb, "text/plain"))
    assert "train_loss" in "\n".join(outputs(nb, "text/html"))


@pytest.mark.slow
def test_reference_notebook(monkeypatch):
    monkeypatch.delenv("WARMUP_BENCH_REFERENCE", raising=False)  # the tables shipped in the package
    nb = execute("reference")
    assert len(outputs(nb, "image/png")) >= 3
    text = "\n".join(outputs(nb, "text/plain"))
    assert "0.02048" in text and "0.08192" in text
