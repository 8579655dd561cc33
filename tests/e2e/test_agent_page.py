"""The agent's status page, rendered by a real headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.support.agent import AgentProcess, wait_for

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str) -> str:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(browser):
        pytest.fail("chromium not found: `make test` installs Debian's chromium package")
    done = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Page(HTMLParser):
    """What the test reads from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.monitors: dict[str, str] = {}
        self.charts: dict[str, int] = {}
        self.body: dict[str, str | None] = {}
        self.text: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if tag == "article" and found.get("data-monitor"):
            self._current = found["data-monitor"]
            classes = (found.get("class") or "").split()
            self.monitors[self._current or ""] = classes[-1]
        if tag == "svg" and self._current is not None:
            self.charts[self._current] = int(found.get("data-points") or 0)
        if tag == "polyline" and self._current is not None:
            points = (found.get("points") or "").split()
            assert len(points) == self.charts[self._current]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def agent(servers: Servers, tmp_path: Path) -> Iterator[AgentProcess]:
    (tmp_path / "warn.lua").write_text('return {value = 42, status = "MetricWarning"}\n')
    (tmp_path / "markup.lua").write_text('error("<b>not markup</b>", 0)\n')
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""
defaults: {{interval: 0.2s, timeout: 5s}}
monitors:
  - {{name: echo-service, url: '{servers.ws}/'}}
  - {{name: closing-service, url: '{servers.ws}/close'}}
  - {{name: secure-service, url: '{servers.wss}/', cafile: '{servers.ca_file}'}}
  - {{name: scripted-check, script: warn.lua}}
  - {{name: markup-check, script: markup.lua}}
"""
    )
    running = AgentProcess(config, tmp_path / "state")
    try:
        yield running
    finally:
        running.kill()


def test_status_page_in_a_real_browser(agent: AgentProcess, tmp_path: Path) -> None:
    def charted() -> bool:
        monitors = agent.json("/api/monitors")["monitors"]
        return all(sum(m["counts"].values()) >= 3 for m in monitors)

    wait_for(charted, 60, "three results of every monitor")
    dom = chromium(tmp_path, "--dump-dom", agent.url)
    page = Page()
    page.feed(dom)
    assert page.monitors == {
        "echo-service": "ok",
        "closing-service": "critical",
        "secure-service": "ok",
        "scripted-check": "warning",
        "markup-check": "critical",
    }
    assert all(points >= 3 for points in page.charts.values()), page.charts
    assert set(page.charts) == set(page.monitors)
    text = " ".join(page.text)
    assert "no response from web socket" in text
    assert "scripted-check: 42 (returned MetricWarning)" in text
    assert "certificate expires in" in text
    assert "<b>not markup</b>" in text  # shown as text, never as markup
    # The page's own script ran: it marks the body and rewrites the times.
    assert page.body.get("data-ready") == "1"
    assert " s ago" in text
    # No external asset: nothing on the page is fetched from elsewhere.
    assert "http://" not in dom.replace(agent.url, "")
    assert "https://" not in dom

    shot = tmp_path / "status.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=412,915", agent.url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("WSPROBE_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["WSPROBE_KEEP_SCREENSHOT"])
