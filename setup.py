"""Build hook: the wheel carries the device side the tools run and deploy.

`gasguard` runs the real firmware (sim, replay), deploys it (flash), validates messages
against the published schemas (monitor) and ships example scenarios. A wheel therefore
holds copies of firmware/, boards/, docs/schemas and docs/scenarios under
gasguard_tools/data/, in the checkout's layout; gasguard_tools.ROOT points there when the
tools do not run from a checkout. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DATA_TREES = ("firmware", "boards", "docs/schemas", "docs/scenarios")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, which has the trees
        dest = Path(self.build_lib) / "gasguard_tools" / "data"
        for tree in DATA_TREES:
            src = HERE / tree
            if not src.is_dir():
                raise SystemExit("setup.py: %s is missing; build from a checkout or the sdist" % tree)
            out = dest / tree
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(src, out, ignore=SKIP)


setup(cmdclass={"build_py": build_py_with_data})
