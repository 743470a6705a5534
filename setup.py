"""Builds the dashboard's bundle before packaging; pyproject.toml holds everything else.

When ``runbase/server/web/static/app.js`` is missing and ``frontend/`` is here, ``npm ci &&
npm run build`` writes it (wheels and sdists then carry it: users need no Node). Without npm
the build warns and goes on: the server then answers its pages with how to build the bundle.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).parent
FRONTEND = ROOT / "frontend"
BUNDLE = ROOT / "runbase" / "server" / "web" / "static" / "app.js"


def build_bundle() -> None:
    if BUNDLE.exists() or not (FRONTEND / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        warnings.warn("npm not found: the dashboard's bundle is not built", stacklevel=1)
        return
    try:
        for command in (["ci"], ["run", "build"]):
            subprocess.run([npm, *command], cwd=FRONTEND, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        warnings.warn(f"building the dashboard's bundle failed: {exc}", stacklevel=1)


class BuildPy(build_py):
    def run(self) -> None:
        build_bundle()
        super().run()


class Sdist(sdist):
    def run(self) -> None:
        build_bundle()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
