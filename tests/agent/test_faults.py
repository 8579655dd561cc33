"""An exception injected into each part of a real agent, on a real loop: it fails one
unit of work, is counted and told in one line, and the agent carries on."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Servers
from wsprobe.agent import config as agent_config
from wsprobe.agent import history as history_module
from wsprobe.agent import service
from wsprobe.agent.faults import COMPONENTS, Faults
from wsprobe.agent.outcome import State
from wsprobe.agent.service import Agent
from wsprobe.agent.sharding import Shard

FAULT = "injected\nfault"
SHOWN = "RuntimeError: injected\\nfault"


def config(tmp_path: Path, servers: Servers, names: tuple[str, ...] = ("m",)) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "monitors:\n"
        + "".join(
            f"  - {{name: {name}, url: '{servers.ws}/', interval: 0.2s, timeout: 2s, "
            "expect: {contains: ping}}\n"
            for name in names
        )
    )
    return path


def once(real: Callable[..., Any]) -> Callable[..., Any]:
    """``real``, except that its first call raises."""
    calls = iter([True])

    if asyncio.iscoroutinefunction(real):

        async def wrapper_async(*args: Any, **kwargs: Any) -> Any:
            if next(calls, False):
                raise RuntimeError(FAULT)
            return await real(*args, **kwargs)

        return wrapper_async

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if next(calls, False):
            raise RuntimeError(FAULT)
        return real(*args, **kwargs)

    return wrapper


async def until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"waited {timeout}s for {what}"
        await asyncio.sleep(0.05)


def runs(agent: Agent, name: str = "m") -> int:
    entry = agent.board.get(name)
    assert entry is not None
    return sum(entry.runs.values())


def inject_check(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    # The websocket prober itself raises, as a judgement of a reply could.
    table = agent.probers._table
    monkeypatch.setitem(table, "websocket", once(table["websocket"]))


def inject_monitor(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent.board, "record", once(agent.board.record))


def inject_history(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent.history, "flush", once(agent.history.flush))


def inject_retention(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_module, "PRUNE_EVERY", 0.05)
    monkeypatch.setattr(agent.history, "prune", once(agent.history.prune))


def inject_reload(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "load_config", once(agent_config.load_config))


INJECTIONS: dict[str, Callable[[Agent, pytest.MonkeyPatch], None]] = {
    "check": inject_check,
    "monitor": inject_monitor,
    "history": inject_history,
    "retention": inject_retention,
    "reload": inject_reload,
}
#: What the log says of each, in one line.
TOLD = {
    "check": f"internal error in check: {SHOWN}",
    "monitor": f"internal error in monitor: {SHOWN}",
    "history": f"internal error in history: {SHOWN}",
    "retention": f"internal error in retention: {SHOWN}",
    "reload": f"reload failed, keeping the running configuration: internal error: {SHOWN}",
}


@pytest.mark.parametrize("component", list(INJECTIONS))
def test_an_exception_fails_one_unit_and_the_agent_carries_on(
    component: str, servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    # The reloads counted when the agent said it had replaced its configuration.
    replaced: list[dict[str, int]] = []

    async def scenario() -> None:
        agent = Agent(
            config(tmp_path, servers),
            state_dir=tmp_path / "state",
            shard=Shard(0, 1),
            log=lines.append,
            reloaded=lambda: replaced.append(dict(agent.reloads)),
        )
        INJECTIONS[component](agent, monkeypatch)
        await agent.start()
        try:
            if component == "reload":
                agent.request_reload()
                await until(lambda: agent.reloads["failure"] == 1, "the failed reload")
                assert agent.board.get("m") is not None, "the running monitors are kept"
                agent.request_reload()
                await until(lambda: agent.reloads["success"] == 1, "the next reload")
            await until(lambda: agent.faults.counts[component] == 1, f"the {component} fault")
            after = runs(agent)
            await until(lambda: runs(agent) >= after + 3, "three more runs")
            await until(lambda: agent.history.queued == 0, "the history written")
        finally:
            await agent.close(5)
        assert {other: agent.faults.counts[other] for other in COMPONENTS} == {
            other: int(other == component) for other in COMPONENTS
        }
        entry = agent.board.get("m")
        assert entry is not None
        if component == "check":
            assert entry.runs["unknown"] == 1
            assert any(
                line == f"monitor m: new -> unknown: internal error: {SHOWN}" for line in lines
            ), lines
        with contextlib.closing(sqlite3.connect(agent.history.path)) as db:
            (stored,) = db.execute("SELECT count(*) FROM agent_results").fetchone()
        # Every run is in the history, the one whose recording failed included (it was
        # queued before the board raised).
        assert stored == sum(entry.runs.values()) + (component == "monitor")

    asyncio.run(scenario())
    # Only the reload that replaced the configuration says so.
    assert replaced == ([{"failure": 1, "success": 1}] if component == "reload" else [])
    assert TOLD[component] in lines, lines
    assert all("\n" not in line and "Traceback" not in line for line in lines)
    assert sum("internal error" in line for line in lines) == (2 if component == "check" else 1)


def test_a_closed_stderr_silences_nothing(servers: Servers, tmp_path: Path) -> None:
    def closed(_line: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    async def scenario() -> Agent:
        path = config(tmp_path, servers)
        # A monitor whose first run is a state change, told to the closed stream.
        path.write_text(
            path.read_text() + "  - {name: n, url: 'ws://127.0.0.1:9/', interval: 0.2s}\n"
        )
        agent = Agent(path, state_dir=tmp_path / "state", shard=Shard(0, 1), log=closed)
        await agent.start()
        try:
            await until(lambda: runs(agent) >= 3 and runs(agent, "n") >= 3, "runs")
        finally:
            await agent.close(5)
        return agent

    agent = asyncio.run(scenario())
    assert agent.faults.counts["log"] >= 1
    states = {name: agent.board.get(name) for name in ("m", "n")}
    assert {
        name: entry.last.status if entry and entry.last else None for name, entry in states.items()
    } == {"m": State.OK, "n": State.CRITICAL}


def test_a_failure_repeating_is_counted_each_time_and_told_once_a_minute() -> None:
    lines: list[str] = []
    faults = Faults(lines.append)
    for _ in range(3):
        with faults.unit("monitor"):
            raise KeyError("x")
    with faults.unit("monitor"):
        raise ValueError("y" * 1000)
    assert faults.counts["monitor"] == 4
    assert lines[0] == "internal error in monitor: KeyError: 'x'"
    assert len(lines) == 2
    assert lines[1].startswith("internal error in monitor: ValueError: yyy")
    assert len(lines[1]) < 600
