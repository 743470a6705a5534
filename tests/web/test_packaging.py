"""The packages carry the dashboard's built bundle, so a user who installs them needs no Node:
an sdist built from this checkout (its bundle built at install), then a wheel built from that
sdist in pip's isolated build environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = "runbase/server/web/"
CARRIED = [
    WEB + "static/app.js",
    WEB + "static/app.css",
    WEB + "shell.html",
    WEB + "login.html",
    WEB + "favicon.svg",
]
pytestmark = pytest.mark.slow


def test_sdist_and_wheel_carry_the_built_bundle(tmp_path):
    if not (ROOT / CARRIED[0]).exists():
        pytest.fail("no built bundle: pip install -e . builds it (npm ci && npm run build)")
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(
        ".*", "node_modules", "test-artifacts", "__pycache__", "*.egg-info", "build", "dist"
    )
    shutil.copytree(ROOT, source, ignore=skip)
    build = "from setuptools import build_meta; build_meta.build_sdist('dist')"
    subprocess.run([sys.executable, "-c", build], cwd=source, capture_output=True, check=True)
    (sdist,) = (source / "dist").glob("runbase-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    assert set(CARRIED) <= names

    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(sdist)]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("runbase-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        carried = {name: archive.getinfo(name).file_size for name in archive.namelist()}
    assert set(CARRIED) <= set(carried)
    assert carried[WEB + "static/app.js"] == (ROOT / CARRIED[0]).stat().st_size
