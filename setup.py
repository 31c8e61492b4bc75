"""One build step; everything else is in pyproject.toml. conf/ stays at the top of the checkout, where a Hydra user
looks for it, and a built wheel carries a copy as bench/conf/, where bench.sweeps.preflight.CONF_DIR finds it after a
non-editable `pip install .`. An editable install copies nothing: it reads the checkout's conf/, so edits count."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConf(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:
            target = Path(self.build_lib) / "bench" / "conf"
            shutil.rmtree(target, ignore_errors=True)  # an earlier build's copy: a deleted YAML must not ship
            shutil.copytree(CONF, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithConf})
