"""Screenshots of the dashboard for the README, from the demo's data.

    .venv/bin/python scripts/screenshots.py

Runs ``runbase demo`` into a fresh data directory, serves it with ``runbase ui``, and saves
the project page to ``docs/img/project.png`` and a run's page to ``docs/img/run.png`` with
Debian's chromium (``RUNBASE_TEST_CHROMIUM`` or ``chromium`` on the PATH).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
RUNBASE = str(Path(sys.executable).with_name("runbase"))
PAINTED = """n => document.querySelectorAll('.chart[data-state="painted"] canvas').length >= n
  && !document.querySelector('.chart[data-state="loading"]')"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def capture(url: str) -> None:
    browser_path = os.environ.get("RUNBASE_TEST_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.locator(".project-list a").first.click()
        page.wait_for_selector(".run-row")
        page.wait_for_function(PAINTED, arg=1)
        page.wait_for_timeout(300)
        OUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT / "project.png"))
        page.locator(".run-row a").first.click()
        page.wait_for_function(PAINTED, arg=1)
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "run.png"), full_page=True)
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="runbase-screens-") as tmp:
        env = {**os.environ, "RUNBASE_DIR": tmp, "RUNBASE_SYSTEM_INTERVAL": "1"}
        env.pop("RUNBASE_DATABASE_URL", None)
        subprocess.run([RUNBASE, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen([RUNBASE, "ui", "--port", str(port)], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(url)
            capture(url)
        finally:
            server.terminate()
            server.wait(10)
    print(f"saved {OUT / 'project.png'} and {OUT / 'run.png'}")


if __name__ == "__main__":
    main()
