"""Boundary cases the Hypothesis suites (tests/*/test_fuzz_*.py) and reviews found:
each case as a table row with its exact message."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import wsprobe
from tests.conftest import ROOT, Run, Servers
from tests.support.calls import cli
from tests.support.net import reply_then_ignore_the_close
from tests.support.wire import RawHandler, read_request
from wsprobe.options import CLOSE_WAIT
from wsprobe.url import redact, redact_header

Capture = pytest.CaptureFixture[str]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://user:pw@host/x", "ws://host/x"),
        ("ws://host/x", "ws://host/x"),
        ("ws:/user:pw@host/", "ws:/host/"),
        ("//user:pw@host/", "//host/"),
        ("user:pw@host", "host"),
        ("ws:user:pw@host/", "host/"),
        ("ws://user:p/w@host/", "ws://…@host/"),
        ("ws://user:p?w@host/", "ws://…@host/"),
        ("ws://user:p#w@host/", "ws://…@host/"),
        ("ws://user:p@w@host/", "ws://host/"),
        ("ws://127.0.0.1:1?w@host/", "ws://…@host/"),
        ("ws://host/\nx", "ws://host/\\nx"),
        ("ws://u:pw@host/\x00", "ws://host/\\x00"),
        # An @ in a query parameter's value is no password's end.
        ("ws://a/?x=@b", "ws://a/?x=@b"),
        ("ws://a:80/p?mail=me@example.org&y=2", "ws://a:80/p?mail=me@example.org&y=2"),
        ("ws://user:p?x=1@host/", "ws://…@host/"),
        # Secret parameters keep their names, never their values.
        ("ws://u:pw@host/?access_token=S&x=1", "ws://host/?access_token=…&x=1"),
        ("ws://host/?Api_Key=S;PASSWORD=P#f", "ws://host/?Api_Key=…;PASSWORD=…#f"),
        ("ws://host/?x%5Ftoken=S", "ws://host/?x%5Ftoken=…"),
        ("ws://host/?token=&token", "ws://host/?token=&token"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ("Authorization Bearer TOKEN", "Authorization…"),
        # One token alone may be the value itself (-H TOKEN).
        ("X-Token", "…"),
        ("SECRET-TOKEN", "…"),
        ("é secret", "…"),
        ("", ""),
    ],
)
def test_redact_header(header: str, shown: str) -> None:
    assert redact_header(header) == shown


@pytest.mark.parametrize(
    ("url", "data", "options", "message"),
    [
        # Found by test_parse_url_is_total: credentials in URLs that fail to parse.
        ("ws:/user:pw@host/", "x", {}, 'invalid url "ws:/host/": missing host'),
        ("//user:pw@host/", "x", {}, 'invalid url "//host/": scheme must be ws or wss'),
        (
            "ws://user:p/w@host/",
            "x",
            {},
            'invalid url "ws://…@host/": port must be a number 0-65535',
        ),
        (
            "ws://user:p#w@host/",
            "x",
            {},
            'invalid url "ws://…@host/": port must be a number 0-65535',
        ),
        (
            "ws://u:pw@host/a b",
            "x",
            {},
            'invalid url "ws://host/a b": contains whitespace or control characters',
        ),
        (
            "ws://u:pw@host/\n",
            "x",
            {},
            'invalid url "ws://host/\\n": contains whitespace or control characters',
        ),
        # Found by test_send_recv_and_probe: a lone surrogate crashed the encoder.
        ("ws://127.0.0.1:9/", "\ud800x", {}, "invalid argument data: not valid UTF-8 text"),
        # Found by test_accepted_options_work: values validation let through.
        (
            "ws://127.0.0.1:9/",
            "x",
            {"timeout": 1e10},
            "invalid option timeout: must be at most 86400 seconds, got 1e+10",
        ),
        (
            "ws://127.0.0.1:9/",
            "x",
            {"max_size": 10**25},
            "invalid option max_size: must be at most 9223372036854775807 bytes, "
            "got 10000000000000000000000000",
        ),
        (
            "ws://127.0.0.1:9/",
            "x",
            {"headers": {"Authorization Bearer TOKEN": "x"}},
            'invalid option headers: invalid header name "Authorization…"',
        ),
    ],
)
def test_bad_input_messages(url: str, data: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(wsprobe.Error) as caught:
        wsprobe.send_recv(url, data, **options)
    assert str(caught.value) == message
    with pytest.raises(wsprobe.Error) as caught:
        asyncio.run(wsprobe.send_recv_async(url, data, **options))
    assert str(caught.value) == message


def test_session_arguments_are_checked(servers: Servers) -> None:
    with wsprobe.connect(servers.ws + "/") as session:
        with pytest.raises(wsprobe.InvalidOption, match=r"^invalid argument data: not valid"):
            session.send("\udcff")
        with pytest.raises(
            wsprobe.InvalidOption, match=r"^invalid argument data: expected bytes, got number$"
        ):
            session.send_binary(5)  # type: ignore[arg-type]  # bytes(5) would be 5 zeros
        session.send("still usable")
        assert session.recv() == "still usable"


@pytest.mark.parametrize(
    ("argv", "code", "err"),
    [
        (
            ["send", "ws://127.0.0.1:9/", "x", "-H", "Authorization Bearer TOKEN"],
            2,
            'wsprobe: invalid option header: expected NAME:VALUE, got "Authorization…"\n',
        ),
        (
            ["send", "ws://127.0.0.1:9/", "x", "--timeout", "1e10"],
            2,
            "wsprobe: invalid option timeout: must be at most 86400 seconds, got 1e+10\n",
        ),
        (
            ["send", "ws://127.0.0.1:9/", "x", "--max-size", "1" * 25],
            2,
            "wsprobe: invalid option max_size: must be at most 9223372036854775807 bytes, "
            f"got {'1' * 25}\n",
        ),
        (
            ["serve", "--port", "70000"],
            2,
            "wsprobe serve: argument --port: must be a port number 0-65535, got '70000'\n",
        ),
        (
            ["serve", "--tls-port", "-1"],
            2,
            "wsprobe serve: argument --tls-port: must be a port number 0-65535, got '-1'\n",
        ),
        (
            ["run", "--memory-limit", "99999999999999", "-"],
            2,
            "wsprobe: invalid option --memory-limit: must be at most 1048576, "
            "got 99999999999999\n",
        ),
        (
            ["run", "--instruction-limit", "99999999999999999", "-"],
            2,
            "wsprobe: invalid option --instruction-limit: must be at most 1000000, "
            "got 99999999999999999\n",
        ),
        (
            ["run", "--script-timeout", "1e10", "-"],
            2,
            "wsprobe: invalid option --script-timeout: must be at most 86400, got 1e10\n",
        ),
    ],
)
def test_cli_bad_values(capsys: Capture, argv: list[str], code: int, err: str) -> None:
    assert cli(capsys, *argv) == (code, "", err)


def test_check_exits_unknown_when_it_cannot_write() -> None:
    """``check >/dev/full`` must read as UNKNOWN (3), not WARNING (1)."""
    with open("/dev/full", "w") as full:
        process = subprocess.run(
            [sys.executable, "-m", "wsprobe", "check", "http://x/"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=30,
            check=False,
        )
    assert (process.returncode, process.stderr) == (
        3,
        "wsprobe: standard input or output failed: no space left on device\n",
    )


def test_send_reports_non_utf8_arguments_in_a_process() -> None:
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsprobe",
            "send",
            "ws://127.0.0.1:9/",
            b"\xff".decode(errors="surrogateescape"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert (process.returncode, process.stderr) == (
        2,
        "wsprobe: invalid argument data: not valid UTF-8 text\n",
    )


def test_user_agent_by_default_and_overridable(servers: Servers) -> None:
    seen = json.loads(wsprobe.send_recv(servers.ws + "/inspect", "x"))["headers"]
    assert seen["user-agent"] == f"wsprobe/{wsprobe.__version__}"
    seen = json.loads(
        wsprobe.send_recv(servers.ws + "/inspect", "x", headers={"user-agent": "mine/1"})
    )["headers"]
    assert seen["user-agent"] == "mine/1"


def test_total_leaves_out_the_close_wait(raw_server: Callable[[RawHandler], str]) -> None:
    started = time.monotonic()
    result = wsprobe.probe(raw_server(reply_then_ignore_the_close), "x", timeout=10)
    assert time.monotonic() - started >= CLOSE_WAIT  # the close was waited for ...
    assert result.timings.total < CLOSE_WAIT  # ... and is not the service's time


def redirect(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: wss://user:pw@example.test/ws\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    conn.recv(1024)


def test_redirects_show_where_they_point(
    raw_server: Callable[[RawHandler], str], capsys: Capture
) -> None:
    url = raw_server(redirect)
    port = url.rsplit(":", 1)[1].rstrip("/")
    message = (
        f"connect {url}: server rejected WebSocket upgrade: HTTP 301 Moved Permanently "
        "(Location: wss://example.test/ws)"
    )
    assert cli(capsys, "send", "-v", url, "x") == (
        7,
        "",
        f"* failed in phase upgrade, connected to 127.0.0.1:{port}\n"
        "* HTTP 301, Location: wss://example.test/ws\n"
        f"wsprobe: {message}\n",
    )
    code, out, _ = cli(capsys, "send", "--json", url, "x")
    assert (code, json.loads(out)) == (
        7,
        {
            "url": url,
            "error": message,
            "exit": 7,
            "kind": "http",
            "status": 301,
            "location": "wss://example.test/ws",
            "phase": "upgrade",
            "peer": f"127.0.0.1:{port}",
        },
    )


def test_verbose_failure_after_the_upgrade(servers: Servers, capsys: Capture) -> None:
    port = servers.ws.rsplit(":", 1)[1]
    assert cli(capsys, "send", "-v", servers.ws + "/close1008", "x") == (
        3,
        "",
        f"* failed in phase reply, connected to 127.0.0.1:{port}\n"
        "* HTTP 101, subprotocol -\n"
        "* close 1008 go away\n"
        "wsprobe: no response from web socket (server closed with 1008 go away)\n",
    )


def test_lua_sessions_tell_how_the_server_closed(run: Run, servers: Servers) -> None:
    code, out, err = run.lua(
        f"""
local s = ws.connect("{servers.subprotocol}/close1008", {{subprotocols = {{"chat.v1"}}}})
print(s.subprotocol, s.close_code, s.close_reason)
s:send("x")
print(pcall(s.recv, s))
print(s.subprotocol, s.close_code, s.close_reason)
"""
    )
    assert (code, err) == (0, "")
    assert out == (
        "chat.v1\tnil\tnil\nfalse\tno response from web socket\nchat.v1\t1008\tgo away\n"
    )


def test_lua_never_shows_a_password(run: Run) -> None:
    code, _, err = run.lua('return ws.send_recv("ws:/user:pw@h/", "x")')
    assert (code, err) == (1, 'check.lua:1: invalid url "ws:/h/": missing host\n')


def test_stdin_text_is_read_as_bytes(
    servers: Servers, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("é\n".encode())))
    assert cli(capsys, "send", servers.ws + "/") == (0, "é\n", "")


def test_lua_require_message_is_one_line_of_utf8(run: Run) -> None:
    # Found by test_every_lua_function: require() echoed its argument raw.
    code, out, _ = run.lua('local _, err = pcall(require, "a\\nb\\255") return err')
    assert (code, out) == (
        0,
        "module not found (only ws, json, log, store, cache, http, time, uuid)\n",
    )


def test_check_usage_errors_are_sanitised_too(capsys: Capture) -> None:
    # Found by test_real_processes: argparse's message bypassed the status line's rules.
    assert cli(capsys, "check", "ws://127.0.0.1:9/", "a|b\nc") == (
        3,
        "WEBSOCKET UNKNOWN - wsprobe: unrecognized arguments: a¦b\\nc\n",
        "",
    )


@pytest.mark.parametrize(
    ("argv", "code", "out", "err"),
    [
        # Inputs that once crashed the call: they work, and stay so.
        (["-H", "Authorization: Bearer abc.def"], 0, "hi\n", ""),
        (["-H", "Cookie: a=1; b=2"], 0, "hi\n", ""),
        (
            ["-H", "X-Odd: a\x01b"],
            2,
            "",
            "wsprobe: invalid option headers.X-Odd: must hold only printable characters "
            "of ISO-8859-1 (Latin-1)\n",
        ),
    ],
)
def test_reported_header_cases(
    servers: Servers, capsys: Capture, argv: list[str], code: int, out: str, err: str
) -> None:
    assert cli(capsys, "send", servers.ws + "/", "hi", *argv) == (code, out, err)


def test_non_ascii_path(servers: Servers, capsys: Capture) -> None:
    assert cli(capsys, "send", servers.ws + "/caminho/é", "olá") == (0, "olá\n", "")


@pytest.mark.parametrize(
    ("argv", "err"),
    [
        # Found by test_run_and_serve_flags: "²".isdigit() is true, and int("²") fails.
        (
            ["serve", "--port", "²"],
            "wsprobe serve: argument --port: must be a port number 0-65535, got '²'\n",
        ),
        (
            ["send", "ws://127.0.0.1:9/", "x", "--max-size", "²"],
            'wsprobe: invalid option max_size: "²" is not a number of bytes\n',
        ),
    ],
)
def test_digits_that_are_not_ascii(capsys: Capture, argv: list[str], err: str) -> None:
    assert cli(capsys, *argv) == (2, "", err)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("when", ["upgrade", "message"])
def test_an_exception_handling_received_data_fails_the_call_at_once(
    servers: Servers, monkeypatch: pytest.MonkeyPatch, loop: str, when: str
) -> None:
    from wsprobe.lua.eventloop import run_event_loop
    from wsprobe.protocol.core import ClientCore

    receive_data = ClientCore.receive_data

    def failing(core: ClientCore, data: bytes) -> None:
        if when == "upgrade" or core.upgraded:
            raise LookupError("injected")
        receive_data(core, data)

    async def scenario() -> str:
        # Deadlines of a minute: the injected error must end the call, not the clock.
        if when == "upgrade":
            monkeypatch.setattr(ClientCore, "receive_data", failing)
        session = await wsprobe.connect_async(f"{servers.ws}/", timeout=60)
        monkeypatch.setattr(ClientCore, "receive_data", failing)
        session.send("x")
        try:
            await session.recv()
        finally:
            await session.close()
        return "no error"

    with pytest.raises(LookupError, match=r"^injected$"):
        run_event_loop(scenario()) if loop == "uvloop" else asyncio.run(scenario())
