"""`make help` lists every target the documentation (README.md, docs/*.md) names, and each of them exists (make -n
accepts it)."""

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.test_walkthrough import documents

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def readme_targets() -> set[str]:
    """Targets in the documentation's code: `make X` in inline code or at the start of a line of a block."""
    return {t for doc in documents(ROOT) for t in re.findall(r"(?:^|`)make ([a-z][a-z-]*)", doc.read_text(), re.M)}


def test_make_help_lists_every_target_the_readme_names_and_each_exists():
    named = readme_targets()
    assert {"demo", "test", "sweep", "status", "slurm-up", "slurm-down", "heatmaps", "reference"} <= named
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^  make (\S+)", out, re.M))
    assert named <= listed, f"named in the documentation but not in `make help`: {sorted(named - listed)}"
    for target in sorted(listed):
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, f"make {target}: {dry.stderr.strip()}"
    assert subprocess.run(["make", "-n", "no-such-target"], cwd=ROOT, capture_output=True).returncode != 0


SWEEP_TARGETS = ("heatmaps", "trajectories", "sweep", "boundary", "status")


def commands(target: str, *variables: str) -> list[str]:
    """The commands `make TARGET VARIABLES` would run, less the install's."""
    dry = subprocess.run(["make", "-n", target, *variables], cwd=ROOT, capture_output=True, text=True, check=True)
    return [
        " ".join(c.split()) for c in dry.stdout.splitlines() if "launch.py" in c or " -m analysis" in c or "cat " in c
    ]


@pytest.mark.parametrize("target", SWEEP_TARGETS)
def test_every_sweep_target_reads_sweep_as_a_preset_name_or_a_folder(target):
    by_name = commands(target, "SWEEP=demo")
    assert by_name and all("outputs/sweeps/demo" in c or "sweep=demo" in c for c in by_name), by_name
    assert not [c for c in by_name if c.endswith(" demo") or " demo " in c], f"a bare name used as a folder: {by_name}"
    for folder in ("outputs/sweeps/demo", "outputs/sweeps/demo/"):
        assert commands(target, f"SWEEP={folder}") == by_name, "the preset's folder is the preset"
    elsewhere = commands(target, "SWEEP=/scratch/me/demo")
    assert all("/scratch/me/demo" in c for c in elsewhere), elsewhere
    assert all("sweep=demo" in c for c in elsewhere if "launch.py" in c), "the folder's last part names the preset"
    trial = commands(target, "SWEEP=demo", "GRID=optimizer.lr=4 name=try")
    assert all("outputs/sweeps/try" in c for c in trial), f"GRID's name= is the folder every target reads: {trial}"


def test_make_demo_with_a_trial_grid_reads_the_trials_folder():
    assert commands("demo")[-1].endswith("-m analysis phase outputs/sweeps/demo")
    trial = commands("demo", "GRID=optimizer.lr=4 name=try")
    assert trial[0].endswith("launch.py -m sweep=demo optimizer.lr=4 name=try")
    assert trial[-1].endswith("-m analysis phase outputs/sweeps/try")
