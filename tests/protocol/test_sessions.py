"""Sessions: wsprobe.connect / connect_async in Python, ws.connect in Lua."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import pytest

import wsprobe
from tests.conftest import Run, Servers, descriptors_settle_to, open_descriptors
from tests.support.calls import MARGIN
from tests.support.net import unused_port

NO_RESPONSE = "no response from web socket"

Connect = Callable[..., Any]


class _Driven:
    """An AsyncSession driven to completion call by call, so that one test body
    written against the blocking Session runs on both twins."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: wsprobe.AsyncSession) -> None:
        self._loop = loop
        self._session = session

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._session, name)
        if inspect.iscoroutinefunction(value):
            return lambda *args, **kwargs: self._loop.run_until_complete(value(*args, **kwargs))
        return value

    def __enter__(self) -> _Driven:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._loop.run_until_complete(self._session.close())


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest) -> Iterator[Connect]:
    """``wsprobe.connect``, or ``wsprobe.connect_async`` driven on a private loop."""
    if request.param == "sync":
        yield wsprobe.connect
        return
    loop = asyncio.new_event_loop()

    def connect_async(url: str, **options: Any) -> _Driven:
        return _Driven(loop, loop.run_until_complete(wsprobe.connect_async(url, **options)))

    try:
        yield connect_async
    finally:
        loop.close()


def _public(cls: type) -> dict[str, list[tuple[str, Any]]]:
    return {
        name: [
            (parameter.name, parameter.default)
            for parameter in inspect.signature(getattr(cls, name)).parameters.values()
        ]
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }


def test_twins_have_the_same_public_methods() -> None:
    assert _public(wsprobe.Session) == _public(wsprobe.AsyncSession)
    from wsprobe.protocol import asyncio as asyncio_transport
    from wsprobe.protocol import sync

    assert [name.removeprefix("Async") for name in asyncio_transport.__all__] == sync.__all__
    assert _public(sync.Connection).keys() == _public(asyncio_transport.AsyncConnection).keys()


def test_several_exchanges_on_one_connection(connect: Connect, servers: Servers) -> None:
    with connect(servers.greeting) as session:
        assert session.recv() == "welcome"
        for word in ("one", "two", "três"):
            session.send(word)
            assert session.recv() == word
        assert session.subprotocol is None


def test_binary_needs_the_option(connect: Connect, servers: Servers) -> None:
    with connect(servers.greeting) as session:
        session.recv()
        session.send_binary(b"\x00\x01")
        with pytest.raises(wsprobe.BinaryMessage, match=r"^ws binary messages not supported$"):
            session.recv()
        session.send("after")
        assert session.recv() == "after"
    with connect(servers.greeting, binary=True) as session:
        session.recv()
        session.send_binary(bytearray(b"\x00\x01"))
        assert session.recv() == b"\x00\x01"


def test_recv_timeout_leaves_the_session_usable(connect: Connect, servers: Servers) -> None:
    with connect(servers.greeting, timeout=5) as session:
        assert session.recv() == "welcome"
        started = time.monotonic()
        with pytest.raises(wsprobe.NoResponse) as info:
            session.recv(timeout=0.2)
        assert time.monotonic() - started > 0.15
        assert info.value.timed_out
        session.send("still there")
        assert session.recv() == "still there"


def test_ping_round_trip(connect: Connect, servers: Servers) -> None:
    with connect(servers.greeting) as session:
        assert 0 < session.ping() < MARGIN


def test_server_close_mid_session(connect: Connect, servers: Servers) -> None:
    session = connect(servers.ws + "/close1008")
    session.send("bye")
    with pytest.raises(wsprobe.NoResponse) as info:
        session.recv()
    assert (info.value.close_code, info.value.close_reason) == (1008, "go away")
    assert (session.close_code, session.close_reason) == (1008, "go away")
    with pytest.raises(
        wsprobe.SessionClosed,
        match=r"^send ws://127\.0\.0\.1:\d+/close1008: the connection is closed$",
    ):
        session.send("again")
    session.close()
    session.close()


def test_connect_errors_are_send_recvs(connect: Connect, servers: Servers) -> None:
    port = unused_port()
    with pytest.raises(
        wsprobe.ConnectError, match=rf"^connect ws://127\.0\.0\.1:{port}/: connection refused$"
    ):
        connect(f"ws://127.0.0.1:{port}/")
    with pytest.raises(
        wsprobe.InvalidOption, match=r"^invalid option binary: expected true or false, got string$"
    ):
        connect(servers.ws, binary="yes")
    with (
        connect(servers.greeting) as session,
        pytest.raises(wsprobe.InvalidOption, match=r"^invalid option timeout"),
    ):
        session.recv(timeout=-1)


def test_async_session(servers: Servers) -> None:
    async def run() -> list[object]:
        seen: list[object] = []
        async with wsprobe.connect_async(servers.greeting, binary=True) as session:
            seen.append(await session.recv())
            session.send("text")
            seen.append(await session.recv())
            session.send_binary(b"\xff")
            seen.append(await session.recv())
            seen.append(await session.ping() < 1)
            try:
                await session.recv(timeout=0.1)
            except wsprobe.NoResponse as exc:
                seen.append(exc.timed_out)
        session = await wsprobe.connect_async(servers.ws + "/close1008")
        session.send("x")
        try:
            await session.recv()
        except wsprobe.NoResponse as exc:
            seen.append(exc.close_code)
        await session.close()
        return seen

    assert asyncio.run(run()) == ["welcome", "text", b"\xff", True, True, 1008]


def test_sessions_do_not_leak_descriptors(connect: Connect, servers: Servers) -> None:
    before = open_descriptors()
    for _ in range(50):
        with connect(servers.greeting) as session:
            session.recv()
    assert descriptors_settle_to(before)


# --- Lua ---


def test_lua_session(run: Run, servers: Servers) -> None:
    source = f"""
local c = ws.connect("{servers.greeting}")
print(c:recv())
c:send("one")
print(c:recv())
c:send("\\0\\1", "binary")
print(pcall(c.recv, c))
print(c:ping() < 1)
print(pcall(c.recv, c, 0.1))
c:close()
print(pcall(c.send, c, "x"))
local b = ws.connect("{servers.greeting}", {{binary = true, timeout = 2}})
b:recv()
b:send("\\0\\1\\2", "binary")
local data, kind = b:recv()
print(#data, kind)
local s = ws.connect("{servers.ws}/close1008")
s:send("x")
print(pcall(s.recv, s))
"""
    code, out, err = run.lua(source)
    assert err == ""
    assert code == 0
    assert out.splitlines() == [
        "welcome\ttext",
        "one\ttext",
        "false\tws binary messages not supported",
        "true",
        f"false\t{NO_RESPONSE}",
        f"false\tsend {servers.greeting}/: the connection is closed",
        "3\tbinary",
        f"false\t{NO_RESPONSE}",
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "local c = ws.connect(URL)\nc.send('x')",
            "check.lua:2: bad argument #1 to 'session:send' (ws session expected, got string; call it as session:send(...))",
        ),
        (
            "local c = ws.connect(URL)\nc:send('x', 'json')",
            'check.lua:2: bad argument #2 to \'session:send\' ("text" or "binary" expected, got json)',
        ),
        (
            "local c = ws.connect(URL)\nc:recv('soon')",
            "check.lua:2: bad argument #1 to 'session:recv' (number expected, got string)",
        ),
        (
            "ws.connect(URL, {binary = 1})",
            "check.lua:1: invalid option binary: expected true or false, got number",
        ),
        (
            "ws.connect(URL, {colour = 'red'})",
            "check.lua:1: invalid option colour: unknown option",
        ),
        (
            "local c = ws.connect(URL)\nlocal x = 1\nreturn c:recv(0.1)",
            "check.lua:3: no response from web socket",
        ),
    ],
)
def test_lua_session_errors(run: Run, servers: Servers, source: str, message: str) -> None:
    code, _, err = run.lua(source.replace("URL", f'"{servers.ws}/silent"'))
    assert (code, err) == (1, message + "\n")


@pytest.mark.slow
def test_script_error_closes_its_sessions(run: Run, servers: Servers) -> None:
    source = f'local c = ws.connect("{servers.greeting}")\nc:recv()\nerror("oops")'
    paths = [run.script(source, f"s{i:02}.lua") for i in range(20)]
    # A process's first run opens what its later runs reuse: counted from after it.
    assert run(paths[0])[0] == 1
    before = open_descriptors()
    # One after the other on one worker, as the scripts of one run.
    code, _, err = run("--concurrency", "1", *paths)
    assert code == 1
    assert sorted(err.splitlines()) == [f"s{i:02}.lua:3: oops" for i in range(20)]
    assert descriptors_settle_to(before)


@pytest.mark.slow
def test_many_scripts_holding_sessions(run: Run, servers: Servers) -> None:
    source = f"""
local c = ws.connect("{servers.greeting}")
assert(c:recv() == "welcome")
c:send("hold")
local reply = c:recv()
return reply
"""
    paths = [run.script(source, f"s{i:03}.lua") for i in range(500)]
    code, out, err = run("--json", "--concurrency", "500", *paths)
    assert code == 0, err
    assert out.count('"result":"hold"') == 500
