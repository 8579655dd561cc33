"""Uptime, incidents and badges through a real agent's HTTP API, from histories the tests
write (outages of known length, a run a minute for days), across a restart and past the
history's retention; and a live monitor's runs counted as the agent writes them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Servers
from tests.support.agent import AgentProcess, wait_for
from tests.support.history import delete_results_before, write_results
from wsprobe.agent.outcome import Outcome, State
from wsprobe.agent.scheduler import offset_of

pytestmark = pytest.mark.slow

MINUTE = 60
HOUR = 3600
DAY = 86_400
# The monitors whose past the tests write run once a day, at an offset far from the
# agent's start: the agent adds none of their runs while a test looks.
QUIET = "1d"


def outages() -> tuple[float, list[Outcome], list[Outcome]]:
    """Three days of "api" (a run a minute, ending a minute ago) with two outages: 90
    minutes of critical 50 hours ago, 20 minutes of unknown 3 hours ago; and of "db",
    whose last 15 runs failed (an incident still open)."""
    end = time.time() // MINUTE * MINUTE - MINUTE
    start = end - 3 * DAY + MINUTE
    api, db = [], []
    moment = start
    while moment <= end:
        ago = end - moment
        if 50 * HOUR - 90 * MINUTE < ago <= 50 * HOUR:
            api.append(Outcome(moment, State.CRITICAL, 0.5, error="no response from web socket"))
        elif 3 * HOUR - 20 * MINUTE < ago <= 3 * HOUR:
            api.append(Outcome(moment, State.UNKNOWN, 0.03, error="<script>alert(1)</script>"))
        else:
            api.append(Outcome(moment, State.OK, 0.02))
        if ago < 15 * MINUTE:
            db.append(Outcome(moment, State.CRITICAL, 0.03, error="connection refused"))
        else:
            db.append(Outcome(moment, State.OK, 0.03))
        moment += MINUTE
    return start, api, db


def config(tmp_path: Path, extra: str = "", retention: str = "30d") -> Path:
    for name in ("api", "db"):
        # Stated, not assumed: neither monitor runs in its first hour.
        assert offset_of(name, DAY) > HOUR
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"""
retention: {retention}
monitors:
  - {{name: api, url: 'ws://127.0.0.1:9/', interval: {QUIET}}}
  - {{name: db, url: 'ws://127.0.0.1:9/', interval: {QUIET}}}
{extra}"""
    )
    return path


def uptime_now(agent: AgentProcess, path: str) -> tuple[float, Any]:
    """``path``'s JSON with the time it was asked at; asked again when an hour began
    while it was (the windows move by the hour)."""
    while True:
        before = time.time()
        found = agent.json(path)
        after = time.time()
        if before // HOUR == after // HOUR:
            return before, found


def expected(outcomes: list[Outcome], now: float) -> dict[str, float]:
    # The windows' edges as documented: 1h from the minute an hour ago, the others from
    # the hour that many hours ago.
    edges = {
        "1h": now // MINUTE * MINUTE - HOUR,
        "24h": now // HOUR * HOUR - DAY,
        "7d": now // HOUR * HOUR - 7 * DAY,
        "30d": now // HOUR * HOUR - 30 * DAY,
    }
    shares = {}
    for window, since in edges.items():
        inside = [o for o in outcomes if o.time >= since]
        shares[window] = sum(o.status <= State.WARNING for o in inside) / len(inside)
    return shares


def test_outages_of_known_length_across_a_restart_and_past_retention(
    tmp_path: Path, agents: list[AgentProcess]
) -> None:
    start, api, db = outages()
    state = tmp_path / "state"
    write_results(state, [("api", o) for o in api] + [("db", o) for o in db])
    agents.append(AgentProcess(config(tmp_path), state))
    agent = agents[-1]

    def check() -> None:
        now, shown = uptime_now(agent, "/api/monitors/api")
        assert shown["uptime"] == expected(api, now)
        assert shown["uptime"]["1h"] == 1.0
        assert shown["uptime"]["7d"] == shown["uptime"]["30d"] == (len(api) - 110) / len(api)
        listed = {m["name"]: m for m in agent.json("/api/monitors")["monitors"]}
        assert listed["api"]["uptime"] == shown["uptime"]
        found = agent.json("/api/monitors/api/incidents")
        critical = [o for o in api if o.status is State.CRITICAL]
        unknown = [o for o in api if o.status is State.UNKNOWN]
        assert found == {
            "monitor": "api",
            "incidents": [
                {
                    "start": unknown[0].time,
                    "end": unknown[-1].time + MINUTE,
                    "state": "unknown",
                    "error": "<script>alert(1)</script>",
                    "runs": 20,
                },
                {
                    "start": critical[0].time,
                    "end": critical[-1].time + MINUTE,
                    "state": "critical",
                    "error": "no response from web socket",
                    "runs": 90,
                },
            ],
        }
        assert (
            agent.json("/api/monitors/api/incidents?limit=1")["incidents"]
            == (found["incidents"][:1])
        )
        (open_,) = agent.json("/api/monitors/db/incidents")["incidents"]
        assert (open_["end"], open_["runs"], open_["state"]) == (None, 15, "critical")

    check()
    assert agent.stop() == 0
    # Restarted with a retention of two days, the history's oldest day gone: the
    # roll-ups keep the windows it held.
    delete_results_before(state, start + DAY)
    agents.append(AgentProcess(config(tmp_path, retention="2d"), state))
    agent = agents[-1]
    check()
    shown = agent.json("/api/monitors/api/results?limit=10000")["results"]
    assert min(r["time"] for r in shown) >= start + DAY


def test_bad_requests_and_unknown_monitors(tmp_path: Path, agents: list[AgentProcess]) -> None:
    _, api, _ = outages()
    write_results(tmp_path / "state", [("api", o) for o in api[-120:]])
    agents.append(AgentProcess(config(tmp_path), tmp_path / "state"))
    agent = agents[-1]
    cases = [
        ("/api/monitors/api/incidents?limit=0", 400, 'invalid limit "0": expected 1 to 1000\n'),
        ("/api/monitors/api/incidents?limit=x", 400, 'invalid limit "x": expected 1 to 1000\n'),
        (
            "/api/monitors/api/incidents?limit=1001",
            400,
            'invalid limit "1001": expected 1 to 1000\n',
        ),
        ("/api/monitors/nope/incidents", 404, 'no monitor "nope"\n'),
        ("/api/monitors?recent=61", 400, 'invalid recent "61": expected 0 to 60\n'),
        (
            "/api/monitors?recent=3&after=soon",
            400,
            'invalid after "soon": expected Unix seconds or an ISO 8601 time\n',
        ),
        ("/badges/nope/status.svg", 404, 'no monitor "nope"\n'),
        ("/badges/nope/uptime/24h.svg", 404, 'no monitor "nope"\n'),
        ("/badges/api/uptime/2d.svg", 404, 'no window "2d": expected 1h, 24h, 7d, 30d\n'),
        ("/badges/api/latency/1y.svg", 404, 'no window "1y": expected 1h, 24h, 7d, 30d\n'),
        ("/badges/api/speed/24h.svg", 404, "404: Not Found"),
        ("/monitors/nope", 404, 'no monitor "nope"\n'),
    ]
    for path, status, body in cases:
        assert agent.get(path)[0::2] == (status, body), path
    # The last runs, newest last, and only those after a time when asked so.
    (shown,) = agent.json("/api/monitors?recent=3")["monitors"][:1]
    assert [beat["time"] for beat in shown["recent"]] == [o.time for o in api[-3:]]
    after = api[-2].time
    (shown,) = agent.json(f"/api/monitors?recent=60&after={after}")["monitors"][:1]
    assert shown["recent"] == [
        {"time": api[-1].time, "status": "ok", "duration": 0.02, "error": None}
    ]
    assert "recent" not in agent.json("/api/monitors")["monitors"][0]


def test_badges(tmp_path: Path, agents: list[AgentProcess]) -> None:
    _, api, db = outages()
    write_results(tmp_path / "state", [("api", o) for o in api] + [("db", o) for o in db])
    agents.append(AgentProcess(config(tmp_path), tmp_path / "state"))
    agent = agents[-1]
    _, shown = uptime_now(agent, "/api/monitors/api")
    week = f"{int(shown['uptime']['7d'] * 10_000) / 100:.2f}%"
    for path, words in [
        ("/badges/api/uptime/7d.svg", ["uptime 7d", week]),
        ("/badges/api/uptime/1h.svg", ["uptime 1h", "100%"]),
        ("/badges/api/latency/1h.svg", ["latency 1h", "20 ms"]),
        ("/badges/api/uptime/24h.svg?label=API%20%3Cup%3E", ["API &lt;up&gt;"]),
        # The last state the history holds.
        ("/badges/db/status.svg", ["status", "critical"]),
        ("/badges/api/status.svg?label=api", ["api", "ok"]),
    ]:
        status, headers, body = agent.get(path)
        assert status == 200, body
        assert headers["Content-Type"] == "image/svg+xml"
        assert headers["Cache-Control"] == "max-age=60"
        assert body.startswith("<svg ")
        assert body.endswith("</svg>")
        for word in words:
            assert f">{word}</text>" in body, (word, body)
        again = agent.get(path, {"If-None-Match": headers["ETag"]})
        assert again[0::2] == (304, "")
    assert agent.get("/badges/api/uptime/7d.svg", {"If-None-Match": '"other"'})[0] == 200


def test_the_agents_own_runs_count(
    tmp_path: Path, servers: Servers, agents: list[AgentProcess]
) -> None:
    # "db"'s incident, open in the history, is closed by its first run that answers.
    _, _, db = outages()
    write_results(tmp_path / "state", [("db", o) for o in db])
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"""
monitors:
  - {{name: db, url: '{servers.ws}/', interval: 0.2s}}
  - {{name: down, url: 'ws://127.0.0.1:9/', interval: 0.2s}}
"""
    )
    agents.append(AgentProcess(path, tmp_path / "state"))
    agent = agents[-1]

    def closed() -> Any:
        incidents = agent.json("/api/monitors/db/incidents")["incidents"]
        return incidents if incidents[0]["end"] is not None else None

    (incident,) = wait_for(closed, 60, "db's incident closed by a run")
    first_ok = agent.json(f"/api/monitors/db/results?since={incident['start']}")["results"]
    assert incident["end"] == next(r["time"] for r in first_ok if r["status"] == "ok")
    assert incident["runs"] == 15
    wait_for(lambda: len(agent.json("/api/monitors/down/results")["results"]) >= 5, 60, "runs")
    assert agent.stop() == 0
    # Restarted with runs once a day (none while the test looks): every run the agent
    # wrote is in the roll-ups, and the incident holds them all.
    assert offset_of("down", DAY) > HOUR
    path.write_text(path.read_text().replace("0.2s", QUIET))
    agents.append(AgentProcess(path, tmp_path / "state"))
    agent = agents[-1]
    written = agent.json("/api/monitors/down/results")["results"]
    (down,) = agent.json("/api/monitors/down/incidents")["incidents"]
    assert (down["runs"], down["start"], down["end"]) == (len(written), written[0]["time"], None)
    assert agent.json("/api/monitors/down")["uptime"] == dict.fromkeys(
        ["1h", "24h", "7d", "30d"], 0.0
    )
