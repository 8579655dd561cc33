"""The agent's scripted monitors joined to the script runtime: the runner's verdict,
``signal("RepeatPrevValue")``, the store in ``--state-dir``, one cache for the agent's
life and one HTTP pool per worker, the lines scripts write, and the supervised workers:
a script stuck in C code or crashing its worker fails alone. A real agent process on
loopback."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import (
    HttpServers,
    LoopThread,
    Servers,
    steps_running,
    wait_for_workers,
    worker_pids,
)
from tests.support.agent import AgentProcess, value, wait_for
from wsprobe.agent.board import OUTPUT_LINE_LENGTH, OUTPUT_LINES
from wsprobe.agent.outcome import State
from wsprobe.agent.service import Agent
from wsprobe.agent.sharding import Shard

pytestmark = pytest.mark.slow


def start(
    agents: list[AgentProcess],
    directory: Path,
    scripts: Mapping[str, str],
    *,
    state: Path | None,
    extra: str = "",
    own: Mapping[str, str] | None = None,
    top: str = "",
    env: Mapping[str, str] | None = None,
    interval: str = "0.2s",
) -> AgentProcess:
    """An agent with one scripted monitor per entry of ``scripts`` (name: Lua source).

    ``extra`` is added to every monitor's fields, ``own[name]`` to that monitor's;
    ``top`` is lines of the configuration's top level."""
    entries = []
    for name, source in scripts.items():
        (directory / f"{name}.lua").write_text(source)
        fields = extra + (own or {}).get(name, "")
        entries.append(f"  - {{name: {name}, script: {name}.lua{fields}}}\n")
    config = directory / "agent.yaml"
    config.write_text(
        f"{top}defaults: {{interval: {interval}, timeout: 5s}}\nmonitors:\n{''.join(entries)}"
    )
    agent = AgentProcess(config, state, env=env)
    agents.append(agent)
    return agent


def last_results(agent: AgentProcess, names: set[str]) -> dict[str, Any] | None:
    listing = agent.json("/api/monitors")["monitors"]
    last = {monitor["name"]: monitor["last"] for monitor in listing}
    return last if all(last.get(name) is not None for name in names) else None


# name: (source, status, value, error) — the result convention as lua/result.py states it,
# in the words of `wsprobe check --script` (test_lua_monsta.py).
VERDICTS = {
    "number": ("return 12.5", "ok", 12.5, None),
    "warning": (
        'return {value = 3, status = "MetricWarning"}',
        "warning",
        3,
        "warning: 3 (returned MetricWarning)",
    ),
    "critical": (
        'return {value = "x", status = "MetricCritical"}',
        "critical",
        "x",
        "critical: x (returned MetricCritical)",
    ),
    "bogus": (
        'return {value = 3, status = "MetricBogus"}',
        "unknown",
        3,
        'unknown status "MetricBogus" (MetricOk, MetricWarning or MetricCritical)',
    ),
    # A status that is not Metric-something is a plain table: ok, with the table.
    "plain-table": ('return {status = "Fine"}', "ok", '{"status":"Fine"}', None),
    "fails": ('error("down")', "critical", None, "fails:1: down"),
    "syntax": ("return (", "unknown", None, "syntax:1: unexpected symbol near <eof>"),
    "other-signal": ('signal("Stop")', "unknown", None, "other-signal: ended with signal Stop"),
}


def test_states_are_the_runners_verdict(tmp_path: Path, agents: list[AgentProcess]) -> None:
    scripts = {name: source for name, (source, *_) in VERDICTS.items()}
    agent = start(agents, tmp_path, scripts, state=tmp_path / "state")
    last = wait_for(lambda: last_results(agent, set(VERDICTS)), 60, "a result of each")
    found = {name: (r["status"], r["value"], r["error"]) for name, r in last.items()}
    assert found == {name: tuple(rest) for name, (_, *rest) in VERDICTS.items()}


REPEAT = """
local n = (store.get("n") or 0) + 1
store.put("n", n)
if n == 1 then return {value = 7, status = "MetricWarning"} end
signal("RepeatPrevValue")
"""


def test_repeat_prev_value_keeps_the_previous_value_and_state(
    tmp_path: Path, agents: list[AgentProcess]
) -> None:
    scripts = {"repeat": REPEAT, "nothing-yet": 'signal("RepeatPrevValue")'}
    agent = start(agents, tmp_path, scripts, state=tmp_path / "state")

    def repeated() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        samples = agent.metrics()
        runs = value(samples, "wsprobe_monitor_runs_total", monitor="repeat", result="repeat")
        return samples if (runs or 0) >= 3 else None

    samples = wait_for(repeated, 60, "three repeated runs")
    assert value(samples, "wsprobe_monitor_value", monitor="repeat") == 7
    assert value(samples, "wsprobe_monitor_status", monitor="repeat") == 1
    counts = {
        result: value(samples, "wsprobe_monitor_runs_total", monitor="repeat", result=result)
        for result in ("ok", "warning", "critical", "unknown")
    }
    assert counts == {"ok": 0, "warning": 1, "critical": 0, "unknown": 0}
    # Without a previous result there is nothing to keep: unknown, saying so.
    assert value(samples, "wsprobe_monitor_status", monitor="nothing-yet") == 3
    listing = {m["name"]: m for m in agent.json("/api/monitors")["monitors"]}
    assert listing["nothing-yet"]["last"]["error"] == (
        "signal RepeatPrevValue: no previous result to keep"
    )
    assert listing["repeat"]["counts"]["repeat"] >= 3
    results = agent.json("/api/monitors/repeat/results")["results"]
    assert len(results) >= 4
    assert {(r["status"], r["value"], r["error"]) for r in results} == {
        ("warning", 7, "repeat: 7 (returned MetricWarning)")
    }
    assert len({r["time"] for r in results}) == len(results)  # each run, at its time
    # The state never changed: one line for the first warning, none for the repeats.
    changes = [line for line in agent.lines if "monitor repeat:" in line]
    assert len(changes) == 1
    assert changes[0].endswith(
        "monitor repeat: new -> warning: repeat: 7 (returned MetricWarning)"
    )


COUNTER = """
local n = (store.get("n") or 0) + 1
store.put("n", n)
return n
"""


def test_store_lives_in_the_state_dir_and_survives_a_restart(
    tmp_path: Path, agents: list[AgentProcess]
) -> None:
    state = tmp_path / "state"
    xdg = tmp_path / "xdg"
    env = {**os.environ, "XDG_STATE_HOME": str(xdg)}
    env.pop("WSPROBE_STATE_DIR", None)
    first = start(agents, tmp_path, {"counter": COUNTER}, state=state, env=env)

    def counted(agent: AgentProcess, at_least: int) -> float | None:
        counter = value(agent.metrics(), "wsprobe_monitor_value", monitor="counter")
        return counter if (counter or 0) >= at_least else None

    wait_for(lambda: counted(first, 3), 60, "three runs")
    assert first.stop() == 0
    with sqlite3.connect(state / "wsprobe.db") as db:
        row = db.execute("SELECT value FROM script_store WHERE key = 'counter:n'").fetchone()
    stored = json.loads(row[0])
    assert stored >= 3
    assert not (xdg / "wsprobe").exists()

    second = start(agents, tmp_path, {"counter": COUNTER}, state=state, env=env)
    results = wait_for(
        lambda: (
            [
                r
                for r in second.json("/api/monitors/counter/results")["results"]
                if r["value"] > stored
            ]
            or None
        ),
        60,
        "a run after the restart",
    )
    assert results[0]["value"] == stored + 1


def test_the_default_state_dir_is_the_one_of_wsprobe_run(
    tmp_path: Path, agents: list[AgentProcess]
) -> None:
    # A relative XDG_STATE_HOME is ignored (the XDG rule), as `wsprobe run` ignores it.
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": "relative"}
    env.pop("WSPROBE_STATE_DIR", None)
    agent = start(agents, tmp_path, {"counter": COUNTER}, state=None, env=env)
    wait_for(
        lambda: value(agent.metrics(), "wsprobe_monitor_value", monitor="counter"), 60, "a run"
    )
    assert agent.stop() == 0
    database = home / ".local" / "state" / "wsprobe" / "wsprobe.db"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM agent_results").fetchone()[0] >= 1
        assert db.execute("SELECT count(*) FROM script_store").fetchone()[0] == 1
    assert not (tmp_path / "relative").exists()


def test_one_cache_for_the_agents_scripts(tmp_path: Path, agents: list[AgentProcess]) -> None:
    scripts = {
        "writer": 'cache.put("shared", 42, 600)\nreturn 1',
        "reader": 'return cache.get("shared") or -1',
    }
    agent = start(agents, tmp_path, scripts, state=tmp_path / "state")
    wait_for(
        lambda: value(agent.metrics(), "wsprobe_monitor_value", monitor="reader") == 42,
        60,
        "the reader to see the writer's value",
    )


@pytest.fixture
def peer_port_server(loop_thread: LoopThread) -> Iterator[str]:
    """An HTTP server answering each request with the client's port: which connection."""

    async def port(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return web.Response(text=str(peer[1]) if peer else "0")

    async def begin() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/port", port)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, bound = loop_thread.run(begin())
    yield f"http://127.0.0.1:{bound}/port"
    loop_thread.run(runner.cleanup())


def test_one_http_pool_per_worker_for_its_life(
    tmp_path: Path, agents: list[AgentProcess], peer_port_server: str
) -> None:
    script = f'return tonumber(http.get("{peer_port_server}").body)'
    # Each worker has its pool: with one worker, every check uses the same.
    agent = start(
        agents, tmp_path, {"pooled": script}, state=tmp_path / "state", top="workers: 1\n"
    )
    results = wait_for(
        lambda: (
            [r["value"] for r in agent.json("/api/monitors/pooled/results")["results"]][-4:]
            if len(agent.json("/api/monitors/pooled/results")["results"]) >= 4
            else None
        ),
        60,
        "four runs",
    )
    # Every check came over the same kept-alive connection: the pool outlives a check
    # (it lives as long as its worker).
    assert len(set(results)) == 1


def test_the_workers_close_the_store_when_the_agent_stops(
    tmp_path: Path, peer_port_server: str
) -> None:
    # In process, to see the end of close(): the history's connection closes first,
    # then the workers', which leave on their own once idle (a killed one would leave
    # the write-ahead log behind).
    (tmp_path / "probe.lua").write_text(
        'store.put("seen", 1)\nreturn tonumber(http.get(os.getenv("TARGET")).body)'
    )
    config = tmp_path / "agent.yaml"
    config.write_text("monitors: []\nmodules:\n  scripted: {script: probe.lua}\n")
    state = tmp_path / "state"

    async def scenario() -> list[str]:
        agent = Agent(config, state_dir=state, shard=Shard(), log=lambda _line: None)
        await agent.start()
        outcome = await agent.probe("scripted", peer_port_server, timeout=None)
        assert (outcome.status, outcome.error) == (State.OK, None)
        assert (state / "wsprobe.db-wal").exists()
        await agent.close(0)
        # SQLite removes the write-ahead log when the last connection to the file closes.
        assert not (state / "wsprobe.db-wal").exists()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del agent
            gc.collect()
        return [str(warning.message) for warning in caught]

    assert asyncio.run(scenario()) == []


def test_each_scripts_own_options_with_the_shared_pool(
    tmp_path: Path, agents: list[AgentProcess], http_servers: HttpServers
) -> None:
    script = f'return http.get("{http_servers.tls_url}/api/health").body'
    agent = start(
        agents,
        tmp_path,
        {"trusted": script},
        state=tmp_path / "state",
        extra=f", cafile: '{http_servers.ca_file}'",
    )
    last = wait_for(lambda: last_results(agent, {"trusted"}), 60, "a result")
    assert (last["trusted"]["status"], last["trusted"]["value"]) == ("ok", "healthy")


NOISY = f"""
for i = 1, 25 do print("line " .. i) end
print(string.rep("x", {OUTPUT_LINE_LENGTH + 100}))
log.warn("done")
return 1
"""


def test_the_last_lines_a_script_wrote(tmp_path: Path, agents: list[AgentProcess]) -> None:
    agent = start(agents, tmp_path, {"noisy": NOISY}, state=tmp_path / "state")
    wait_for(lambda: last_results(agent, {"noisy"}), 60, "a run")
    shown = agent.json("/api/monitors/noisy")
    assert shown["name"] == "noisy"
    assert shown["last"]["value"] == 1
    lines = [entry["line"] for entry in shown["output"]]
    assert len(lines) == OUTPUT_LINES, lines
    assert lines[-3:] == ["line 25", "x" * OUTPUT_LINE_LENGTH + "…", "WARN done"]
    # Cut where the script ran: 27 lines, the last 19 kept.
    assert lines[0] == "… 8 earlier lines"
    assert all(isinstance(entry["time"], float) for entry in shown["output"])
    # The listing stays light: no lines there.
    assert "output" not in agent.json("/api/monitors")["monitors"][0]
    status, _, body = agent.get("/api/monitors/nope")
    assert (status, body) == (404, 'no monitor "nope"\n')


STUCK = 'return string.find(string.rep("a", 30000), ".-.-.-.-.-b")'


def healthy_script(servers: Servers) -> str:
    return f'print("checking")\nreturn ws.send_recv("{servers.ws}/", "fine")'


def results_of(agent: AgentProcess, name: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = agent.json(f"/api/monitors/{name}/results")["results"]
    return results


def test_a_script_stuck_in_c_fails_alone(
    tmp_path: Path, agents: list[AgentProcess], servers: Servers
) -> None:
    agent = start(
        agents,
        tmp_path,
        {"healthy": healthy_script(servers), "stuck": STUCK},
        state=tmp_path / "state",
        own={"stuck": ", timeout: 2s"},
        interval="0.25s",
    )
    first = set(wait_for_workers(agent.process.pid, 2))
    stuck = wait_for(
        lambda: results_of(agent, "stuck") if len(results_of(agent, "stuck")) >= 3 else None,
        90,
        "three runs of the stuck script",
    )
    # Each run held a worker until the watchdog killed it, at the monitor's own limit.
    assert {(r["status"], r["error"]) for r in stuck} == {
        ("critical", "script exceeded its time limit of 2s")
    }
    healthy = results_of(agent, "healthy")
    assert {(r["status"], r["value"], r["error"]) for r in healthy} == {("ok", "fine", None)}
    # On schedule all along: it ran on the other worker while each stuck run held one.
    times = [r["time"] for r in healthy]
    for run in stuck:
        assert any(run["time"] < time < run["time"] + run["duration"] for time in times)
    assert agent.process.poll() is None
    # The stuck script's workers were killed and replaced; there are two again.
    now = wait_for_workers(agent.process.pid, 2)
    assert len(now) == 2
    assert set(now) != first
    line = agent.wait_for_log("monitor stuck:")
    assert line.endswith("monitor stuck: new -> critical: script exceeded its time limit of 2s")
    shown = agent.json("/api/monitors/healthy")
    assert shown["output"][-1]["line"] == "checking"
    assert agent.stop() == 0


def test_a_crashed_worker_does_not_take_the_agent_down(
    tmp_path: Path, agents: list[AgentProcess], servers: Servers
) -> None:
    agent = start(
        agents,
        tmp_path,
        {"healthy": healthy_script(servers), "stuck": STUCK},
        state=tmp_path / "state",
        own={"stuck": ", timeout: 60s"},
        top="workers: 1\n",
        interval="0.25s",
    )
    (worker,) = wait_for_workers(agent.process.pid, 1)
    wait_for(lambda: results_of(agent, "healthy") or None, 60, "a healthy run")

    # The stuck script is in its one long step (the only one with a 60 s deadline),
    # and no healthy step runs beside it.
    def stuck_alone() -> bool:
        deadlines = [deadline for _, deadline in steps_running(worker)]
        return bool(deadlines) and min(deadlines) > time.monotonic() + 30

    wait_for(stuck_alone, 60, "the stuck script alone in its step")
    os.kill(worker, signal.SIGSEGV)
    crashed = time.time()
    stuck = wait_for(lambda: results_of(agent, "stuck") or None, 60, "the stuck script's record")
    assert (stuck[0]["status"], stuck[0]["error"]) == (
        "critical",
        "script crashed its worker (killed by SIGSEGV)",
    )
    # A fresh worker took its place; the healthy monitor goes on there.
    wait_for(
        lambda: [r for r in results_of(agent, "healthy") if r["time"] > crashed + 1] or None,
        60,
        "healthy runs after the crash",
    )
    healthy = results_of(agent, "healthy")
    assert {(r["status"], r["error"]) for r in healthy} == {("ok", None)}
    assert agent.process.poll() is None
    (replacement,) = worker_pids(agent.process.pid)
    assert replacement != worker
    # The stuck script runs again and is cut when the agent stops, within its grace.
    assert agent.stop() == 0
    assert any(line.endswith("stopped 1 checks still running after 5s") for line in agent.lines)


def test_a_reload_keeps_the_workers(tmp_path: Path, agents: list[AgentProcess]) -> None:
    agent = start(
        agents, tmp_path, {"counter": COUNTER}, state=tmp_path / "state", top="workers: 1\n"
    )
    (worker,) = wait_for_workers(agent.process.pid, 1)
    wait_for(lambda: last_results(agent, {"counter"}), 60, "a run")
    config = tmp_path / "agent.yaml"
    (tmp_path / "added.lua").write_text('return "added"')
    config.write_text(
        config.read_text().replace("workers: 1", "workers: 2")
        + "  - {name: added, script: added.lua}\n"
    )
    agent.signal(signal.SIGHUP)
    agent.wait_for_log("reloaded: 2 monitors")
    assert any(
        line.endswith("reload: a new number of workers applies only after a restart")
        for line in agent.lines
    )
    last = wait_for(lambda: last_results(agent, {"counter", "added"}), 60, "the new monitor")
    assert last["added"]["value"] == "added"
    assert worker_pids(agent.process.pid) == [worker]
