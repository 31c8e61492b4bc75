"""A warmup method from a package outside the project joins through the entry point group warmup_bench.methods and
one YAML in the user's own --config-dir: no fork, no edit of bench/ (tests/helpers.py plugin_package)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import run_in_process
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


BROKEN = (
    "entry point my_sqrt = my_warmup (group warmup_bench.methods) cannot be loaded: "
    "ModuleNotFoundError: No module named 'not_a_module'"
)


def test_a_broken_plugin_is_one_line_naming_its_entry_point(tmp_path):
    """Its option cannot compose (its schema was never registered): the line says why."""
    site, conf = plugin_package(tmp_path, broken=True)
    args = ["--config-dir", str(conf), "schedule=my_sqrt", *tiny_run(), f"hydra.run.dir={tmp_path / 'run'}"]
    done = launch_with(site, *args)
    assert (done.returncode, done.stderr.strip()) == (1, f"error: {BROKEN}")
    assert not (tmp_path / "run").exists()


def test_a_broken_plugin_refuses_every_run_before_compute(tmp_path, monkeypatch):
    """load_plugins names the entry point; discover then refuses any run, a built-in method's too (in process)."""
    from bench.optim import warmup

    site, _ = plugin_package(tmp_path, broken=True)
    monkeypatch.syspath_prepend(str(site))
    assert warmup.load_plugins() == BROKEN
    monkeypatch.setitem(warmup._plugins, "problem", BROKEN)  # as this process would have found it at its start
    with pytest.raises(SystemExit) as e:
        run_in_process(*tiny_run(), "schedule=linear", f"hydra.run.dir={tmp_path / 'run'}")
    assert str(e.value) == f"error: {BROKEN}"
    assert not (tmp_path / "run" / "result.json").exists()
