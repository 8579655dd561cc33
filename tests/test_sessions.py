"""Sessions: wsprobe.connect / connect_async in Python, ws.connect in Lua."""

from __future__ import annotations

import asyncio
import time

import pytest

import wsprobe
from tests.conftest import Run, Servers, descriptors_settle_to, open_descriptors
from tests.test_send_recv import unused_port

NO_RESPONSE = "no response from web socket"


def test_several_exchanges_on_one_connection(servers: Servers) -> None:
    with wsprobe.connect(servers.greeting) as session:
        assert session.recv() == "welcome"
        for word in ("one", "two", "três"):
            session.send(word)
            assert session.recv() == word
        assert session.subprotocol is None


def test_binary_needs_the_option(servers: Servers) -> None:
    with wsprobe.connect(servers.greeting) as session:
        session.recv()
        session.send_binary(b"\x00\x01")
        with pytest.raises(wsprobe.BinaryMessage, match=r"^ws binary messages not supported$"):
            session.recv()
        session.send("after")
        assert session.recv() == "after"
    with wsprobe.connect(servers.greeting, binary=True) as session:
        session.recv()
        session.send_binary(bytearray(b"\x00\x01"))
        assert session.recv() == b"\x00\x01"


def test_recv_timeout_leaves_the_session_usable(servers: Servers) -> None:
    with wsprobe.connect(servers.greeting, timeout=5) as session:
        assert session.recv() == "welcome"
        started = time.monotonic()
        with pytest.raises(wsprobe.NoResponse) as info:
            session.recv(timeout=0.2)
        assert 0.15 < time.monotonic() - started < 0.5
        assert info.value.timed_out
        session.send("still there")
        assert session.recv() == "still there"


def test_ping_round_trip(servers: Servers) -> None:
    with wsprobe.connect(servers.greeting) as session:
        assert 0 < session.ping() < 1


def test_server_close_mid_session(servers: Servers) -> None:
    session = wsprobe.connect(servers.ws + "/close1008")
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


def test_connect_errors_are_send_recvs(servers: Servers) -> None:
    port = unused_port()
    with pytest.raises(
        wsprobe.ConnectError, match=rf"^connect ws://127\.0\.0\.1:{port}/: connection refused$"
    ):
        wsprobe.connect(f"ws://127.0.0.1:{port}/")
    with pytest.raises(
        wsprobe.InvalidOption, match=r"^invalid option binary: expected true or false, got string$"
    ):
        wsprobe.connect(servers.ws, binary="yes")  # type: ignore[arg-type]
    with (
        wsprobe.connect(servers.greeting) as session,
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


def test_sessions_do_not_leak_descriptors(servers: Servers) -> None:
    before = open_descriptors()
    for _ in range(50):
        with wsprobe.connect(servers.greeting) as session:
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


def test_script_error_closes_its_sessions(run: Run, servers: Servers) -> None:
    before = open_descriptors()
    source = f'local c = ws.connect("{servers.greeting}")\nc:recv()\nerror("oops")'
    for _ in range(20):
        assert run.lua(source)[0] == 1
    assert descriptors_settle_to(before)


def test_many_scripts_holding_sessions(run: Run, servers: Servers) -> None:
    source = f"""
local c = ws.connect("{servers.greeting}")
assert(c:recv() == "welcome")
c:send("hold")
local reply = c:recv()
return reply
"""
    paths = [run.script(source, f"s{i:03}.lua") for i in range(500)]
    started = time.monotonic()
    code, out, err = run("--json", "--concurrency", "500", *paths)
    assert code == 0, err
    assert out.count('"result":"hold"') == 500
    assert time.monotonic() - started < 20
