"""`alma-tui serve`: the app in a browser, through textual-serve, seen by a real headless Chromium.

The server runs as a subprocess on a free localhost port; each browser tab makes it start
its own `alma-tui watch` over a websocket. The browser test needs Chromium (Debian's
`chromium` package) and playwright's Python package driving it; where either is missing it
is skipped with the reason, and the HTTP test still checks the page and the websocket path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tui_fixture import make_fixture_repo

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    repo = make_fixture_repo(tmp_path_factory.mktemp("serve") / "designs_repo", run_status="done")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ALMA_TUI_CONFIG_FILE="none", LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alma_tui", "serve", "--repo", str(repo), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                html = r.read().decode()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                proc.kill()
                pytest.fail(f"alma-tui serve did not come up: {out[-2000:]}")
            time.sleep(0.2)
    try:
        yield url, html, repo
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_page_points_the_browser_at_the_app(served) -> None:
    url, html, repo = served
    assert f"alma · {repo.name}" in html
    m = re.search(r'data-session-websocket-url="([^"]+)"', html)
    assert m and m.group(1).startswith("ws://127.0.0.1:") and "/ws" in m.group(1)
    # its own terminal emulator and stylesheet, served locally (the page works offline)
    js = re.search(r'src="([^"]*textual\.js)"', html)
    assert js is not None
    with urllib.request.urlopen(url.rstrip("/") + "/" + js.group(1).split("/", 3)[-1].lstrip("/"), timeout=5) as r:
        assert r.status == 200 and len(r.read()) > 10_000


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_a_headless_browser_sees_the_archive(served, tmp_path: Path) -> None:
    chromium = _browser()
    if chromium is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright's Python package is not installed")
    url, _html, _repo = served
    screen_text: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: screen_text.append(_text(payload))))
            page.goto(url)
            page.wait_for_selector(".textual-terminal canvas, .textual-terminal .xterm-screen", timeout=20_000)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                seen = ANSI.sub("", "".join(screen_text))
                if "ARCHIVE" in seen and "d006" in seen and "DONE" in seen:
                    break
                page.wait_for_timeout(250)
            page.screenshot(path=str(tmp_path / "serve.png"))
        finally:
            browser.close()
    seen = ANSI.sub("", "".join(screen_text))
    assert "ARCHIVE" in seen, seen[-800:]
    assert "d006" in seen and "DONE" in seen  # the fixture's designs and its finished run
    assert (tmp_path / "serve.png").stat().st_size > 10_000


def _text(payload: str | bytes) -> str:
    """The terminal output in one websocket frame (textual-serve sends JSON or raw bytes)."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    return " ".join(str(x) for x in data) if isinstance(data, list) else str(data)
