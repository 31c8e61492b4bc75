"""The run-folder contract (bench/runfolder/): torch-free, the schema check, the grid of a sweep without Hydra's
private API, and `analysis status` run with torch absent from sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # the test compares against it; analysis does not
from hydra.core.override_parser.overrides_parser import OverridesParser

from analysis.status import expand
from bench import runfolder
from bench.runfolder.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def test_contract_imports_neither_torch_nor_hydra_nor_config():
    code = (
        "import sys, bench.runfolder; bad = {'torch', 'hydra', 'bench.config'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_result_json_carries_the_format_and_every_written_key_is_documented(tmp_path):
    RunStore(tmp_path).write_result({"status": "failed", "error": "boom", "error_type": "exception"})
    result = json.loads((tmp_path / runfolder.RESULT).read_text())
    assert result["format"] == runfolder.FORMAT
    assert runfolder.check_result(result) == []
    assert all(meaning for _, meaning in runfolder.RESULT_KEYS.values())
    assert "absolute eta_trgt" in runfolder.RESULT_KEYS["lr"][1]


def test_schema_check_names_missing_keys_and_wrong_types():
    ok = {"status": "completed", "stop_step": 10, "lr": "inf", "seed": 0, "lambda0": None, "compile": False}
    assert runfolder.check_result(ok) == []
    bad = {"status": "completed", "stop_step": 10.5, "seed": 0, "lr": 0.1, "num_params": "many", "deterministic": 1}
    problems = runfolder.check_result(bad)
    assert problems == ["wrong type: stop_step=10.5, num_params='many', deterministic=1"]
    assert runfolder.check_result({"status": "diverged", "seed": 1}) == ["missing stop_step, lr"]
    assert runfolder.check_result({"status": "done"}) == ["status 'done' is not one of completed, diverged, failed"]
    assert runfolder.check_result([]) == ["not a mapping"]


def test_grid_expands_as_the_basic_sweeper_does():
    arguments = ["optimizer.lr=0.1,0.2,0.4", "seed=0,1", "steps=8", "schedule.warmup_steps=choice(1,4)", "seed=3"]
    parsed = OverridesParser.create().parse_overrides(arguments)
    expected = [list(p) for batch in BasicSweeper.split_arguments(parsed, None) for p in batch]
    assert expand(arguments) == expected and len(expected) == 6


def write_point(sweep: Path, name: str, overrides: list[str], result: dict | None) -> None:
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if result is not None:
        (folder / runfolder.RESULT).write_text(json.dumps(result))


STATUS_WITHOUT_TORCH = """
import sys
from analysis.__main__ import main
main(["status", sys.argv[1]])
bad = {"torch", "bench.config", "bench.train"} & set(sys.modules)
assert not bad, f"analysis status imported {bad}"
assert "hydra._internal.core_plugins.basic_sweeper" not in sys.modules  # the grid comes from the public parser
"""


def test_analysis_status_runs_without_torch_and_reports_schema_problems(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    params = {"optimizer.lr": "0.1,0.2", "schedule.warmup_steps": "1,4"}
    (sweep / runfolder.MULTIRUN).write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": params}}}))
    good = {"format": 1, "status": "completed", "stop_step": 8, "lr": 0.1, "seed": 0}
    write_point(sweep, "a", ["optimizer.lr=0.1", "schedule.warmup_steps=1"], good)
    write_point(sweep, "b", ["optimizer.lr=0.2", "schedule.warmup_steps=1"], {"status": "diverged", "lr": "fast"})
    write_point(sweep, "c", ["optimizer.lr=0.1", "schedule.warmup_steps=4"], None)
    out = subprocess.run(
        [sys.executable, "-c", STATUS_WITHOUT_TORCH, str(sweep)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "4 points: 1 completed, 1 diverged, 0 failed, 1 running, 1 missing" in out.stdout
    assert "b: result.json does not match the schema: missing stop_step, seed; wrong type: lr='fast'" in out.stdout
    assert "a: result.json" not in out.stdout


def test_analysis_imports_only_the_contract_from_bench_and_no_private_hydra():
    for path in sorted((ROOT / "analysis").glob("*.py")):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["from"], ["import"]) and len(words) > 1:
                module = words[1]
                assert not module.startswith("bench") or module == "bench.runfolder", f"{path.name}: {line}"
                assert not module.startswith("hydra._internal"), f"{path.name}: {line}"
