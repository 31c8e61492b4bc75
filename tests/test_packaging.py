"""pyproject.toml and environment.yml name the same packages with the same version bounds; the wheel carries the
package data."""

import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import tomllib
import yaml

from tests.conftest import ROOT


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        for req in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, spec = _split(req.replace("=", "==", 1) if re.match(r"^[\w.\-]+=[^=]", req) else req)
            have[name] = spec
    have.pop("python"), have.pop("pip")
    assert have == wanted


@pytest.mark.slow
def test_wheel_ships_the_reference_tables(tmp_path):
    """A non-editable install has the authors' tables and their licence (package-data), so `make reference` needs no
    file outside the package."""
    src = tmp_path / "src"  # setuptools builds in the source tree: build a copy, leave the checkout clean
    junk = (".git", ".venv", ".slurm", "outputs", "data", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*junk), symlinks=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("warmup_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = "analysis/reference_data/why-warmup/"
    assert sum(n.startswith(data + "resnet_results/") and n.endswith(".tab") for n in names) == 91
    assert {data + "LICENSE", data + "README.md", "analysis/notebooks/reference.ipynb"} <= set(names)
