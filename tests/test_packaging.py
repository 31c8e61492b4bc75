"""The packaging contract: pyproject.toml names ranges, constraints.txt pins the tested versions within them, and
environment.yml and `make install` install the package through both; the pre-commit hook runs the pinned ruff; a
non-editable install in a fresh venv carries conf/, the Hydra plugins and the reference data, and its console
scripts run a sweep from another folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from omegaconf import OmegaConf
from packaging.requirements import Requirement

from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    """constraints.txt as {name: version}; every line outside comments is an exact pin."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line := line.split("#", 1)[0].strip():
            name, sep, version = line.partition("==")
            assert sep and version and not set(version) & set("<>=!~,*; "), f"not an exact pin: {line!r}"
            pins[_name(name)] = version
    return pins


def test_constraints_pin_every_dependency_within_its_range():
    pins = constraints()
    requirements = [Requirement(r) for extra in ("dev", "optuna") for r in PROJECT["optional-dependencies"][extra]]
    for req in [Requirement(r) for r in PROJECT["dependencies"]] + requirements:
        assert _name(req.name) in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[_name(req.name)], prereleases=True), f"{req} vs {pins[_name(req.name)]}"
    assert "warmup-bench" not in pins
    exact = [r for r in PROJECT["dependencies"] if "==" in r]
    assert not exact, f"the library's dependencies are ranges (a cluster with another CUDA installs them): {exact}"


def test_environment_installs_the_package_through_pyproject_and_the_constraints():
    """environment.yml restates no dependency: conda brings Python and pip, pip the package (pyproject.toml's list)
    at the pinned versions, as `make install` does."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if not isinstance(d, dict)]
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert [d.split("=")[0] for d in conda] == ["python", "pip"]
    assert pip == ["-c constraints.txt", "-e .[dev]"]
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --no-compile -c constraints.txt -e '.[dev]'" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject.toml constraints.txt$", makefile, re.M), "a new pin reinstalls"


def test_pre_commit_runs_ruff_at_the_pinned_version():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (ruff,) = [r for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == "v" + constraints()["ruff"]
    assert {h["id"] for h in ruff["hooks"]} == {"ruff-check", "ruff-format"}


def test_console_scripts_are_the_checkout_commands():
    """warmup-bench is launch.py's program, warmup-bench-analysis is python -m analysis's."""
    assert PROJECT["scripts"] == {"warmup-bench": "bench.cli:cli", "warmup-bench-analysis": "analysis.__main__:main"}
    assert "from bench.cli import cli" in (ROOT / "launch.py").read_text()


# a fresh venv that sees the test's own environment (torch, Hydra...) through a .pth file, so that the install needs
# no network and no torch download; the test's environment itself is only read (never pip install into it)
PIP = ["-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed"]
TOP_IGNORE = {".git", ".venv", ".slurm", "outputs", "multirun", "data", "build", "wandb"}  # bench/data is code


def _ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: local state at the top of the checkout, caches and build leftovers anywhere."""
    junk = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")(folder, names)
    return junk | (TOP_IGNORE & set(names) if Path(folder) == ROOT else set())


_QUIET = {"capture_output": True, "text": True, "check": True}


def _purelib(python: Path | str) -> Path:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], **_QUIET)
    return Path(out.stdout.strip()).resolve()


def _shared_state(site: Path) -> dict[str, int]:
    """What a stray install of the project into the shared environment would add or change (other packages may come
    and go there meanwhile: other sessions share it)."""
    ours = [p for p in site.iterdir() if re.match(r"(__editable__\.?_?)?warmup[-_]bench", p.name)]
    ours += [p for p in (site / "bench", site / "analysis", site / "hydra_plugins" / "warmup_bench") if p.exists()]
    return {str(p.relative_to(site)): p.stat().st_mtime_ns for p in ours}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install .` (non-editable) of a copy of the checkout into a fresh venv; the copy is deleted afterwards, so
    nothing can be read from it. Returns (venv, its site-packages, a clean environment for its commands)."""
    tmp = tmp_path_factory.mktemp("install")
    src, venv = tmp / "src", tmp / "venv"
    shutil.copytree(ROOT, src, ignore=_ignore, symlinks=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], **_QUIET)
    shared, site = _purelib(sys.executable), _purelib(venv / "bin" / "python")
    (site / "_test_dependencies.pth").write_text(f"{shared}\n")  # a path line: its .pth files are not run
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PIP_")}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1", "HYDRA_FULL_ERROR": "0"}
    before = _shared_state(shared)
    subprocess.run([venv / "bin" / "python", *PIP, "."], cwd=src, env=env, **_QUIET)
    assert _shared_state(shared) == before, "the install touched the shared environment"
    shutil.rmtree(src)
    return venv, site, env


@pytest.mark.slow
def test_installed_package_carries_conf_plugins_and_reference_tables(installed):
    """The wheel has every YAML of conf/ (as bench/conf/), the Hydra plugins, the authors' tables and their licence
    (`make reference` needs no file outside the package), and no other top-level package."""
    venv, site, _ = installed
    record = next(site.glob("warmup_bench-*.dist-info")) / "RECORD"
    names = {line.split(",")[0] for line in record.read_text().splitlines()}
    conf = {"bench/conf/" + p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert conf and conf <= names, sorted(conf - names)
    code = {
        p.relative_to(ROOT).as_posix() for d in ("bench", "analysis", "hydra_plugins") for p in (ROOT / d).rglob("*.py")
    }
    assert code <= names, sorted(code - names)
    data = "analysis/reference_data/why-warmup/"
    assert sum(n.startswith(data + "resnet_results/") and n.endswith(".tab") for n in names) == 91
    assert {data + "LICENSE", data + "README.md", "analysis/notebooks/reference.ipynb"} <= names
    top = {n.split("/")[0] for n in names if not n.startswith(("../", "warmup_bench-"))}
    assert top == {"bench", "analysis", "hydra_plugins"}, top
    assert {(venv / "bin" / s).is_file() for s in PROJECT["scripts"]} == {True}


@pytest.mark.slow
def test_installed_commands_run_a_sweep_from_another_folder(installed, tmp_path):
    """`warmup-bench -m sweep=demo` (two tiny points) in an empty folder writes the sweep there, composed from the
    installed package's conf/; `warmup-bench-analysis status` reads it."""
    venv, site, env = installed
    python = venv / "bin" / "python"
    where = subprocess.run(
        [
            python,
            "-c",
            "import bench, analysis, importlib.util as u; "
            "print(bench.__file__, analysis.__file__, u.find_spec('hydra_plugins.warmup_bench').origin)",
        ],
        cwd=tmp_path,
        env=env,
        **_QUIET,
    ).stdout.split()
    assert all(Path(f).is_relative_to(site) for f in where), where

    # a trial of the demo grid, written into the demo's folder by choice (name=demo; without it: refused)
    grid = ["optimizer.lr=0.0625", "schedule.warmup_steps=1,4", "steps=8", "eval_every=4", "threads=1", "name=demo"]
    run = subprocess.run(
        [venv / "bin" / "warmup-bench", "-m", "sweep=demo", *grid],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sweep = tmp_path / "outputs" / "sweeps" / "demo"
    assert len(list(sweep.glob("*/result.json"))) == 2
    sources = OmegaConf.load(sweep / "multirun.yaml").hydra.runtime.config_sources
    (main,) = [s.path for s in sources if s.provider == "main"]
    assert Path(main) == site / "bench" / "conf"

    status = subprocess.run(
        [venv / "bin" / "warmup-bench-analysis", "status", "outputs/sweeps/demo"], cwd=tmp_path, env=env, **_QUIET
    ).stdout
    assert status.startswith("outputs/sweeps/demo: 2 points: 2 completed, 0 diverged, 0 failed"), status
