"""The pages' HTML from hostile data: everything shown is text, never markup; the fields
another part of the agent adds (alert, maintenance) are shown when present."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from wsprobe.agent.config import PageSettings
from wsprobe.agent.outcome import Outcome, State
from wsprobe.agent.page import MonitorDetail, render_monitor, render_page
from wsprobe.agent.uptime import Incident, Window

HOSTILE = '<script>alert("x")</script>&"\''
NOW = 1_800_000_000.0


class Tags(HTMLParser):
    """Every tag and the text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        # The page's own style and script are not what it shows.
        if self.lasttag not in ("style", "script"):
            self.text.append(data)


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def monitor(**extra: Any) -> dict[str, Any]:
    last = Outcome(NOW - 5, State.CRITICAL, 0.2, error=HOSTILE, cert_expires=NOW + 86400 * 9)
    return {
        "name": "api",
        "url": f"ws://example.com/{HOSTILE}",
        "script": None,
        "interval": 10.0,
        "labels": {"team": HOSTILE},
        "last": last.as_json(),
        "counts": {"critical": 1},
        "skipped": 0,
        "uptime": {"1h": 0.5, "24h": 0.99934, "7d": 1.0, "30d": None},
        "latency": {"1h": 0.2, "24h": 0.1, "7d": 0.1, "30d": None},
        **extra,
    }


def test_the_status_page_escapes_and_shows_alerts() -> None:
    beats = [Outcome(NOW - 15 + i, State.CRITICAL, 0.01, error=HOSTILE) for i in range(3)]
    page = render_page(
        [monitor(alert={"state": "firing", "since": NOW - 60}, maintenance=True)],
        {"api": beats},
        shard=None,
        settings=PageSettings(group_by="team"),
        shown=30,
        now=NOW,
    )
    tags = parsed(page)
    # One script, the page's own; no tag from the data.
    assert tags.tags.count("script") == 1
    assert HOSTILE not in page
    text = "".join(tags.text)
    assert f"team: {HOSTILE}" in text
    assert HOSTILE in text
    assert "alert firing since 2027-01-15 07:59:00 UTC" in text
    assert "in maintenance: notifications held back" in text
    assert "certificate expires in 9 days" in text
    cells = [t for t in tags.text if t.endswith("%") or t == "–"]
    assert cells == ["50.00%", "99.93%", "100%", "–"]
    titles = [value for name, value in tags.attributes if name == "title"]
    assert titles == [
        f"2027-01-15 07:59:{45 + i:02d} UTC · critical · 10 ms · {HOSTILE}" for i in range(3)
    ]


def test_alert_and_maintenance_absent_or_off() -> None:
    page = render_page(
        [monitor(alert=None, maintenance=False), {**monitor(), "name": "other"}],
        {},
        shard="1/2",
        settings=PageSettings(),
        shown=30,
        now=NOW,
    )
    text = "".join(parsed(page).text)
    assert "alert" not in text.replace("alert(", "")
    assert 'data-f="maintenance" data-maintenance="false" hidden' in page
    assert "shard 1/2" in text


def test_a_monitors_page_escapes_its_script_output_and_incidents() -> None:
    results = [Outcome(NOW - 600 + 60 * i, State.OK, 0.01 * (i + 1)) for i in range(10)]
    page = render_monitor(
        MonitorDetail(
            monitor={**monitor(), "script": "/etc/check.lua", "url": None},
            recent=results,
            windows={"24h": Window(10, 9, 0.5)},
            incidents=[Incident(NOW - 100, None, State.CRITICAL, HOSTILE, 3)],
            results=results,
            output=[(NOW - 1, HOSTILE)],
        ),
        now=NOW,
    )
    tags = parsed(page)
    assert tags.tags.count("script") == 1
    assert HOSTILE not in page
    text = "".join(tags.text)
    assert f"2027-01-15 07:59:59 UTC  {HOSTILE}" in text
    assert "ongoing" in text
    assert "90.00%" in text
    # The chart: a value axis in milliseconds and time marks every minute.
    assert "100 ms" in text
    assert "07:55" in text
    assert 'data-points="10"' in page
