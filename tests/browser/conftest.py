"""Browser tests: a real `heisttrace serve` on 127.0.0.1 and Debian's Chromium via Playwright.

The browser is the system one (`/usr/bin/chromium`, installed by `make test`); Playwright never
downloads a browser here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from typer.testing import CliRunner

from heisttrace.cli import app as cli_app
from report_case import make_case_workspace

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = os.environ.get("HEISTTRACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    return ARTIFACTS


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The demo and scale cases, the HTML report of the demo case, and a running server."""
    root = tmp_path_factory.mktemp("browser")
    built = make_case_workspace(root / "ws")
    report = root / "demo-report.html"
    res = CliRunner().invoke(cli_app, ["report", "demo", "-w", str(root / "ws"), "--html",
                                       str(report)])
    assert res.exit_code == 0, res.output
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "heisttrace", "serve", "-w", str(root / "ws"), "--port",
         str(port)], stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                                                                "HEISTTRACE_API_TOKEN": ""})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/api/cases", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start: " + (root / "server.log").read_text())
        time.sleep(0.1)
    try:
        yield {**built, "base": base, "report": report, "api": httpx.Client(base_url=base)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    seen: list[str] = []
    pg.dialogs = seen  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    yield pg
    context.close()
