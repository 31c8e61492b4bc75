"""A warmup method from a package outside the project joins through the entry point group warmup_bench.methods and
one YAML in the user's own --config-dir: no fork, no edit of bench/ (tests/helpers.py plugin_package)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT, plugin_package, subprocess_env, tiny_run


def launch_with(site, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    cmd = [sys.executable, str(ROOT / "launch.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_method_and_an_initialization_from_an_outside_package_train(tmp_path):
    site, conf = plugin_package(tmp_path)
    run = tmp_path / "run"
    ours = ["schedule=my_sqrt", "optimizer=my_const_adam", "optimizer.v0=0.5"]
    args = tiny_run("schedule.warmup_fraction=0.75", "optimizer.lr=0.0009")  # 12 steps: T_wrm = 9
    done = launch_with(site, "--config-dir", str(conf), *ours, *args, f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr
    result = json.loads((run / "result.json").read_text())
    assert (result["status"], result["warmup_steps"], result["v0"]) == ("completed", 9, 0.5)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["schedule"]["name"], config["optimizer"]["name"]) == ("my_sqrt", "my_const_adam")
    lr = pd.read_csv(run / "metrics.csv").set_index("step")["lr"]
    expected = [0.0009 * (4 / 9) ** 0.5, 0.0009 * (8 / 9) ** 0.5, 0.0009]
    assert [lr[4], lr[8], lr[12]] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("schedule", ["schedule=my_sqrt", "schedule=linear"])
def test_a_broken_plugin_is_one_line_naming_its_entry_point(tmp_path, schedule):
    """Its option cannot compose (its schema was never registered), and any other run is refused too."""
    site, conf = plugin_package(tmp_path, broken=True)
    done = launch_with(site, "--config-dir", str(conf), schedule, *tiny_run(), f"hydra.run.dir={tmp_path / 'run'}")
    line = (
        "error: entry point my_sqrt = my_warmup (group warmup_bench.methods) cannot be loaded: "
        "ModuleNotFoundError: No module named 'not_a_module'"
    )
    assert (done.returncode, done.stderr.strip()) == (1, line)
    assert not (tmp_path / "run" / "result.json").exists()
