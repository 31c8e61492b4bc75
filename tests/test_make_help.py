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
