"""The agent's status page, rendered by a real headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.support.agent import AgentProcess, wait_for
from tests.support.history import write_results
from wsprobe.agent.outcome import Outcome, State

pytestmark = pytest.mark.slow

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
    """What the test reads from the rendered DOM: per monitor its state, heartbeats and
    uptime cells; the page's panels, chart, incidents and results."""

    def __init__(self) -> None:
        super().__init__()
        self.monitors: dict[str, str] = {}
        self.beats: dict[str, list[tuple[str, str]]] = {}
        self.uptime: dict[str, dict[str, str]] = {}
        self.groups: list[str] = []
        self.body: dict[str, str | None] = {}
        self.chart: dict[str, str | None] = {}
        self.time_marks: list[str] = []
        self.incidents: list[list[str]] = []
        self.results: list[list[str]] = []
        self.output = ""
        self.text: list[str] = []
        self._current: str | None = None
        self._cell: tuple[str, str] | None = None
        self._row: list[str] | None = None
        self._rows: list[list[str]] | None = None
        self._tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        self._tags.append(tag)
        if tag == "body":
            self.body = found
        if tag == "article" and found.get("data-monitor"):
            self._current = found["data-monitor"] or ""
            self.monitors[self._current] = classes[-1]
            self.beats[self._current] = []
            self.uptime[self._current] = {}
        if tag == "b" and "beat" in classes and self._current is not None:
            self.beats[self._current].append((classes[-1], found.get("title") or ""))
        if tag == "dd" and found.get("data-w") and self._current is not None:
            self._cell = (self._current, found["data-w"] or "")
        if tag == "svg" and "chart" in classes:
            self.chart = found
        if tag == "tr" and ("incident" in classes or "result" in classes):
            self._row = []
            self._rows = self.incidents if "incident" in classes else self.results
        if tag == "td" and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._tags:
            self._tags.pop()
        if tag == "article":
            self._current = None
        if tag == "dd":
            self._cell = None
        if tag == "tr" and self._row is not None and self._rows is not None:
            self._rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            monitor, window = self._cell
            self.uptime[monitor][window] = data
        if self._row is not None and self._tags[-1:] == ["td"]:
            self._row[-1] += data
        if self._tags[-1:] == ["h2"] and self._current is None:
            self.groups.append(data)
        if self._tags[-1:] == ["text"] and self.chart:
            self.time_marks.append(data)
        if self._tags[-1:] == ["pre"]:
            self.output += data


def read(dom: str) -> Page:
    page = Page()
    page.feed(dom)
    return page


@pytest.fixture(scope="module")
def agent(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One agent for the module's pages (the browser only reads them)."""
    tmp_path = tmp_path_factory.mktemp("agent")
    (tmp_path / "warn.lua").write_text(
        'print("checked <b>the queue</b>")\nreturn {value = 42, status = "MetricWarning"}\n'
    )
    (tmp_path / "markup.lua").write_text('error("<b>not markup</b>", 0)\n')
    # Two days of the echo service at a run a minute, with a 45-minute outage.
    end = time.time() // 60 * 60 - 60
    past = []
    for minute in range(2 * 1440):
        moment = end - minute * 60
        if 20 * 60 <= minute < 20 * 60 + 45:
            past.append(Outcome(moment, State.CRITICAL, 0.4, error="no response from web socket"))
        else:
            past.append(Outcome(moment, State.OK, 0.002 + 0.001 * (minute % 7)))
    write_results(tmp_path / "state", [("echo-service", o) for o in reversed(past)])
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""
defaults: {{interval: 0.2s, timeout: 5s}}
page: {{group_by: team, refresh: 1s}}
monitors:
  - {{name: echo-service, url: '{servers.ws}/', labels: {{team: core}}}}
  - {{name: closing-service, url: '{servers.ws}/close', labels: {{team: core}}}}
  - {{name: secure-service, url: '{servers.wss}/', cafile: '{servers.ca_file}',
      labels: {{team: edge}}}}
  - {{name: scripted-check, script: warn.lua, labels: {{team: "<i>ops</i>"}}}}
  - {{name: markup-check, script: markup.lua}}
"""
    )
    running = AgentProcess(config, tmp_path / "state")
    try:
        yield running
    finally:
        running.kill()


def keep(shot: Path, name: str) -> None:
    # WSPROBE_SCREENSHOTS=docs keeps the screenshots the README shows.
    where = os.environ.get("WSPROBE_SCREENSHOTS")
    if where:
        shutil.copy(shot, Path(where) / name)


def test_status_page_in_a_real_browser(agent: AgentProcess, tmp_path: Path) -> None:
    def charted() -> bool:
        monitors = agent.json("/api/monitors")["monitors"]
        return all(sum(m["counts"].values()) >= 3 for m in monitors)

    wait_for(charted, 60, "three results of every monitor")
    status, headers, _ = agent.get("/")
    assert status == 200
    assert headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'sha256-")
    # A virtual second or more: the page fetches /api/monitors and updates itself.
    dom = chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", agent.url)
    page = read(dom)
    assert page.monitors == {
        "echo-service": "ok",
        "closing-service": "critical",
        "secure-service": "ok",
        "scripted-check": "warning",
        "markup-check": "critical",
    }
    assert page.groups == ["team: <i>ops</i>", "team: core", "team: edge", "no team"]
    for name, beats in page.beats.items():
        assert len(beats) >= 3, (name, beats)
        assert {state for state, _ in beats} == {page.monitors[name]}, name
        assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · ", t) for _, t in beats)
    assert "no response from web socket" in page.beats["closing-service"][-1][1]
    # Uptime: the echo service's outage shows in the longer windows, not in the last hour.
    echo = page.uptime["echo-service"]
    assert set(echo) == {"1h", "24h", "7d", "30d"}
    assert echo["1h"] == "100%"
    # 45 minutes down: about 3% of a day, 1.5% of the two days in the longer windows.
    assert re.fullmatch(r"9[67]\.\d\d%", echo["24h"]), echo
    assert echo["7d"] == echo["30d"]
    assert re.fullmatch(r"98\.\d\d%", echo["7d"]), echo
    assert page.uptime["closing-service"] == dict.fromkeys(echo, "0.00%")
    text = " ".join(page.text)
    assert "scripted-check: 42 (returned MetricWarning)" in text
    assert "certificate expires in" in text
    assert "<b>not markup</b>" in text  # shown as text, never as markup
    # The page's own script ran (allowed by the policy's hash) and refreshed the cards.
    assert page.body.get("data-ready") == "1"
    assert int(page.body.get("data-refreshed") or 0) >= 1
    assert " s ago" in text
    # No external asset: nothing on the page is fetched from elsewhere.
    assert "http://" not in dom.replace(agent.url, "").replace("http://www.w3.org/", "")
    assert "https://" not in dom

    for size, name in [("1280,1120", "status-page.png"), ("412,915", "status-phone.png")]:
        shot = tmp_path / name
        chromium(tmp_path, f"--screenshot={shot}", f"--window-size={size}", agent.url)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep(tmp_path / "status-page.png", "status-page.png")


def test_a_monitors_page_in_a_real_browser(agent: AgentProcess, tmp_path: Path) -> None:
    wait_for(
        lambda: sum(agent.json("/api/monitors/scripted-check")["counts"].values()) >= 3,
        60,
        "three runs of the script",
    )
    dom = chromium(tmp_path, "--dump-dom", agent.url + "monitors/echo-service")
    page = read(dom)
    assert page.monitors == {"echo-service": "ok"}
    # The chart: two days and the live runs, with a value axis and time marks.
    assert int(page.chart.get("data-points") or 0) >= 1440
    marks = [m for m in page.time_marks if re.fullmatch(r"\d\d:\d\d|[A-Z][a-z]{2} \d\d", m)]
    assert len(marks) >= 4, page.time_marks
    assert any(m.endswith(" ms") for m in page.time_marks), page.time_marks
    (incident,) = page.incidents
    assert incident[1:] == [incident[1], "45 min", "critical", "45", "no response from web socket"]
    assert len(page.results) == 20
    assert all(row[1] == "ok" for row in page.results[:3])
    text = " ".join(page.text)
    for window in ("1h", "24h", "7d", "30d"):
        assert window in text

    dom = chromium(tmp_path, "--dump-dom", agent.url + "monitors/scripted-check")
    page = read(dom)
    assert "checked <b>the queue</b>" in page.output
    assert page.incidents[0][1:4] == ["ongoing", page.incidents[0][2], "warning"]

    shot = tmp_path / "monitor.png"
    url = agent.url + "monitors/echo-service"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1500", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep(shot, "monitor-page.png")
