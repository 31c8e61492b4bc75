"""pyproject.toml and environment.yml name the same packages with the same version bounds."""

import re

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
