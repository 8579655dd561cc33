"""send_recv against real servers: every outcome, its exact message and a time bound."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import wsprobe
from tests.conftest import Servers, descriptors_settle_to, open_descriptors
from tests.support.calls import CALLS, MARGIN, call, call_async
from tests.support.net import http_reply, never_answers, reply_then_ignore_the_close, unused_port
from tests.support.wire import RawHandler, accept_upgrade, frame

NO_RESPONSE = "no response from web socket"
BINARY = "ws binary messages not supported"


# (id, path on the shared server, options, expected outcome, bound in seconds)
SERVER_CASES: list[tuple[str, str, dict[str, Any], str, float]] = [
    ("echo non-ASCII", "/", {}, "Olá, WebSocket!", 1),
    ("binary reply", "/binary", {}, f"error: {BINARY}", 1),
    ("close without reply", "/close", {}, f"error: {NO_RESPONSE}", 1),
    ("close 1008", "/close1008", {}, f"error: {NO_RESPONSE}", 1),
    ("abrupt TCP drop", "/drop", {}, f"error: {NO_RESPONSE}", 1),
    ("silent server", "/silent", {"timeout": 0.5}, f"error: {NO_RESPONSE}", 0.7),
    ("ping before reply", "/ping", {}, "Olá, WebSocket!", 1),
    ("fragmented reply", "/fragments", {}, "fragmented réply", 1),
    ("no compression", "/", {"compression": False}, "Olá, WebSocket!", 1),
]


@pytest.mark.parametrize("run", CALLS)
@pytest.mark.parametrize(
    ("path", "options", "expected", "bound"),
    [pytest.param(*case[1:], id=case[0]) for case in SERVER_CASES],
)
def test_outcomes_against_websockets_server(
    servers: Servers,
    run: Callable[..., tuple[str, float]],
    path: str,
    options: dict[str, Any],
    expected: str,
    bound: float,
) -> None:
    outcome, elapsed = run(servers.ws + path, **options)
    assert outcome == expected
    assert elapsed < bound + MARGIN


@pytest.mark.parametrize("run", CALLS)
def test_greeting_is_the_reply(servers: Servers, run: Callable[..., tuple[str, float]]) -> None:
    assert run(servers.greeting)[0] == "welcome"


@pytest.mark.parametrize("run", CALLS)
def test_two_mib_reply_is_accepted(
    servers: Servers, run: Callable[..., tuple[str, float]]
) -> None:
    reply, _ = run(servers.ws + "/big")
    assert reply == "x" * (2 * 1024 * 1024)


@pytest.mark.parametrize("run", CALLS)
def test_reply_over_max_size(servers: Servers, run: Callable[..., tuple[str, float]]) -> None:
    outcome, elapsed = run(servers.ws + "/big", max_size=1024 * 1024)
    assert outcome == (
        f"error: receive {servers.ws}/big: reply larger than max_size of 1048576 bytes"
    )
    assert elapsed < 1 + MARGIN


def test_close_code_and_reason_are_kept(servers: Servers) -> None:
    with pytest.raises(wsprobe.NoResponse) as info:
        wsprobe.send_recv(servers.ws + "/close1008", "x")
    assert (info.value.close_code, info.value.close_reason) == (1008, "go away")
    assert info.value.describe() == f"{NO_RESPONSE} (server closed with 1008 go away)"


def test_drop_has_no_close_code(servers: Servers) -> None:
    with pytest.raises(wsprobe.NoResponse) as info:
        wsprobe.send_recv(servers.ws + "/drop", "x")
    assert info.value.close_code is None
    assert info.value.describe() == f"{NO_RESPONSE} (connection closed without a close frame)"


def test_silent_server_times_out_as_no_response(servers: Servers) -> None:
    with pytest.raises(wsprobe.NoResponse) as info:
        wsprobe.send_recv(servers.ws + "/silent", "x", timeout=0.2)
    assert info.value.timed_out
    assert info.value.describe() == f"{NO_RESPONSE} (timed out)"


# --- raw servers: HTTP refusals and frame-level misbehaviour ---


def after_upgrade(*chunks: bytes, accept: str | None = None) -> RawHandler:
    def handler(conn: socket.socket) -> None:
        accept_upgrade(conn, accept=accept)
        conn.recv(65536)
        for chunk in chunks:
            conn.sendall(chunk)
        conn.recv(65536)

    return handler


def trickle_huge_frame(conn: socket.socket) -> None:
    accept_upgrade(conn)
    conn.recv(65536)
    conn.sendall(b"\x81\x7f" + (2**62).to_bytes(8, "big"))
    for _ in range(100):
        conn.sendall(b"x")
        time.sleep(0.05)


RAW_CASES: list[tuple[str, RawHandler, dict[str, Any], str, float]] = [
    (
        "HTTP 404",
        http_reply("HTTP/1.1 404 Not Found"),
        {},
        "connect {url}: server rejected WebSocket upgrade: HTTP 404 Not Found",
        1,
    ),
    (
        "HTTP/1.0 403",
        http_reply("HTTP/1.0 403 Forbidden"),
        {},
        "connect {url}: server rejected WebSocket upgrade: HTTP 403 Forbidden",
        1,
    ),
    (
        "plain HTTP 200",
        http_reply("HTTP/1.1 200 OK", b"<html>hi</html>"),
        {},
        "connect {url}: server rejected WebSocket upgrade: HTTP 200 OK",
        1,
    ),
    (
        "never answers the upgrade",
        never_answers,
        {"timeout": 0.3},
        "connect {url}: timed out after 0.3s",
        0.5,
    ),
    (
        "not HTTP at all",
        http_reply("SSH-2.0-OpenSSH_9.2"),
        {},
        "connect {url}: the server's reply is not HTTP",
        1,
    ),
    (
        "bad Sec-WebSocket-Accept",
        after_upgrade(accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        {},
        "connect {url}: invalid upgrade response: invalid Sec-WebSocket-Accept header: "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        1,
    ),
    (
        "invalid UTF-8",
        after_upgrade(frame(0x1, b"caf\xc3")),
        {},
        "receive {url}: protocol error: invalid UTF-8 in text message",
        1,
    ),
    (
        "masked server frame",
        after_upgrade(frame(0x1, b"hi", mask=True)),
        {},
        "receive {url}: protocol error: incorrect masking",
        1,
    ),
    (
        "reserved bits",
        after_upgrade(frame(0x1, b"hi", rsv=0x20)),
        {"compression": False},
        "receive {url}: protocol error: reserved bits must be 0",
        1,
    ),
    (
        "unknown opcode",
        after_upgrade(frame(0x3, b"hi")),
        {},
        "receive {url}: protocol error: invalid opcode",
        1,
    ),
    ("close then garbage", after_upgrade(frame(0x8, b"\x03\xe8bye")), {}, NO_RESPONSE, 1),
    (
        "huge frame trickled",
        trickle_huge_frame,
        {"timeout": 0.5, "max_size": 2**63 - 1},
        NO_RESPONSE,
        0.8,
    ),
]


@pytest.mark.parametrize("run", CALLS)
@pytest.mark.parametrize(
    ("handler", "options", "expected", "bound"),
    [pytest.param(*case[1:], id=case[0]) for case in RAW_CASES],
)
def test_misbehaving_servers(
    raw_server: Callable[[RawHandler], str],
    run: Callable[..., tuple[str, float]],
    handler: RawHandler,
    options: dict[str, Any],
    expected: str,
    bound: float,
) -> None:
    url = raw_server(handler)
    outcome, elapsed = run(url, **options)
    assert outcome == "error: " + expected.format(url=url)
    assert elapsed < bound + MARGIN


# --- connection failures and bad arguments ---


@pytest.mark.parametrize("run", CALLS)
@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        pytest.param(
            "ws://nohost.invalid/",
            {},
            "connect ws://nohost.invalid/: could not resolve host nohost.invalid",
            id="dns",
        ),
        pytest.param(
            "http://x/", {}, 'invalid url "http://x/": scheme must be ws or wss', id="http"
        ),
        pytest.param("ws://", {}, 'invalid url "ws://": missing host', id="no host"),
        pytest.param(
            "ws://a b/",
            {},
            'invalid url "ws://a b/": contains whitespace or control characters',
            id="space",
        ),
        pytest.param(
            "ws://x:99999/",
            {},
            'invalid url "ws://x:99999/": port out of range 0-65535',
            id="port",
        ),
        pytest.param(
            "ws://x/#top",
            {},
            'invalid url "ws://x/#top": a WebSocket URL cannot have a #fragment',
            id="fragment",
        ),
        pytest.param(
            "ws://u:secret@x:99999/",
            {},
            'invalid url "ws://x:99999/": port out of range 0-65535',
            id="credentials hidden",
        ),
        pytest.param(
            "ws://x/",
            {"timeout": 0},
            "invalid option timeout: must be a positive number of seconds, got 0",
            id="timeout 0",
        ),
        pytest.param(
            "ws://x/",
            {"timeout": "soon"},
            'invalid option timeout: "soon" is not a number of seconds',
            id="timeout text",
        ),
        pytest.param(
            "ws://x/",
            {"max_size": -1},
            "invalid option max_size: must be a positive number of bytes, got -1",
            id="max_size",
        ),
        pytest.param(
            "ws://x/",
            {"insecure": "yes"},
            "invalid option insecure: expected true or false, got string",
            id="insecure",
        ),
        pytest.param(
            "ws://x/",
            {"headers": {"Bad Name": "x"}},
            'invalid option headers: invalid header name "Bad…"',
            id="header name",
        ),
        pytest.param(
            "ws://x/",
            {"headers": {"X-A": "1\r\nX-B: 2"}},
            "invalid option headers.X-A: must not contain line breaks",
            id="header injection",
        ),
        pytest.param(
            "ws://x/",
            {"headers": {"Upgrade": "h2c"}},
            "invalid option headers: Upgrade is set by the WebSocket handshake",
            id="reserved header",
        ),
        pytest.param(
            "ws://x/",
            {"subprotocols": "chat"},
            "invalid option subprotocols: expected a list of names, got string",
            id="subprotocols",
        ),
        pytest.param(
            "wss://x/",
            {"cafile": "/nonexistent.pem"},
            "invalid option cafile: cannot load /nonexistent.pem: no such file or directory",
            id="cafile",
        ),
    ],
)
def test_connection_failures_and_bad_arguments(
    run: Callable[..., tuple[str, float]], url: str, options: dict[str, Any], expected: str
) -> None:
    outcome, elapsed = run(url, **options)
    assert outcome == f"error: {expected}"
    assert elapsed < 2 + MARGIN


@pytest.mark.parametrize("run", CALLS)
def test_connection_refused(run: Callable[..., tuple[str, float]]) -> None:
    port = unused_port()
    assert run(f"ws://127.0.0.1:{port}/x")[0] == (
        f"error: connect ws://127.0.0.1:{port}/x: connection refused"
    )


@pytest.mark.parametrize("run", CALLS)
def test_credentials_never_appear_in_errors(run: Callable[..., tuple[str, float]]) -> None:
    port = unused_port()
    outcome, _ = run(f"ws://admin:hunter2@127.0.0.1:{port}/")
    assert outcome == f"error: connect ws://127.0.0.1:{port}/: connection refused"


def test_error_kinds_and_status() -> None:
    with pytest.raises(wsprobe.ConnectError) as info:
        wsprobe.send_recv(f"ws://127.0.0.1:{unused_port()}/", "x")
    assert info.value.kind == "refused"


def test_http_status_is_an_attribute(raw_server: Callable[[RawHandler], str]) -> None:
    url = raw_server(http_reply("HTTP/1.1 403 Forbidden"))
    with pytest.raises(wsprobe.ConnectError) as info:
        wsprobe.send_recv(url, "x")
    assert (info.value.kind, info.value.status) == ("http", 403)


def test_non_string_arguments() -> None:
    with pytest.raises(wsprobe.InvalidURL, match=r'^invalid url "42": expected a string$'):
        wsprobe.send_recv(42, "x")  # type: ignore[arg-type]
    with pytest.raises(
        wsprobe.InvalidOption, match=r"^invalid argument data: expected a string, got bytes$"
    ):
        wsprobe.send_recv("ws://x/", b"x")  # type: ignore[arg-type]


def test_default_timeout_from_environment(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WSPROBE_TIMEOUT", "0.3")
    outcome, elapsed = call(servers.ws + "/silent")
    assert outcome == f"error: {NO_RESPONSE}"
    assert 0.25 < elapsed < 0.3 + MARGIN
    monkeypatch.setenv("WSPROBE_TIMEOUT", "never")
    assert call(servers.ws)[0] == (
        'error: invalid option WSPROBE_TIMEOUT: "never" is not a number of seconds'
    )


# --- what reaches the server ---


@pytest.mark.parametrize("run", CALLS)
def test_headers_origin_and_credentials_reach_the_server(
    servers: Servers, run: Callable[..., tuple[str, float]]
) -> None:
    url = servers.ws.replace("ws://", "ws://user:pa%20ss@") + "/inspect"
    reply, _ = run(
        url, headers={"X-Token": "abc", "Host": "monitor.example"}, origin="https://o.example"
    )
    seen = json.loads(reply)["headers"]
    assert seen["x-token"] == "abc"
    assert seen["host"] == "monitor.example"
    assert seen["origin"] == "https://o.example"
    assert seen["authorization"] == "Basic dXNlcjpwYSBzcw=="
    assert "permessage-deflate" in seen["sec-websocket-extensions"]


def test_subprotocol_is_negotiated(servers: Servers) -> None:
    result = wsprobe.probe(servers.subprotocol + "/inspect", "x", subprotocols=["chat.v1"])
    assert json.loads(result.reply)["subprotocol"] == "chat.v1"
    assert result.subprotocol == "chat.v1"


# --- TLS ---


@pytest.mark.parametrize("run", CALLS)
def test_tls_with_cafile(servers: Servers, run: Callable[..., tuple[str, float]]) -> None:
    assert run(servers.wss + "/", cafile=str(servers.ca_file))[0] == "Olá, WebSocket!"


@pytest.mark.parametrize("run", CALLS)
def test_tls_untrusted(servers: Servers, run: Callable[..., tuple[str, float]]) -> None:
    assert run(servers.wss + "/")[0] == (
        f"error: connect {servers.wss}/: TLS certificate verify failed: "
        "unable to get local issuer certificate"
    )


@pytest.mark.parametrize("run", CALLS)
def test_tls_insecure(servers: Servers, run: Callable[..., tuple[str, float]]) -> None:
    assert run(servers.wss + "/", insecure=True)[0] == "Olá, WebSocket!"


@pytest.mark.parametrize("run", CALLS)
def test_tls_via_ssl_cert_file(
    servers: Servers, run: Callable[..., tuple[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca_file))
    assert run(servers.wss + "/")[0] == "Olá, WebSocket!"


def test_tls_wrong_host_name(servers: Servers) -> None:
    url = servers.wss.replace("127.0.0.1", "localhost") + "/"
    assert call(url, cafile=str(servers.ca_file))[0] == "Olá, WebSocket!"


def test_tls_to_a_plain_server(servers: Servers) -> None:
    url = servers.ws.replace("ws://", "wss://") + "/"
    outcome, elapsed = call(url)
    assert outcome == f"error: connect {url}: TLS handshake failed: unexpected eof while reading"
    assert elapsed < 1 + MARGIN


def test_probe_reports_certificate_expiry(servers: Servers) -> None:
    result = wsprobe.probe(servers.wss + "/", "x", cafile=str(servers.ca_file))
    assert result.cert_expires is not None
    assert result.cert_expires.year >= time.gmtime().tm_year


# --- a peer from another ecosystem ---


@pytest.mark.node
@pytest.mark.parametrize("run", CALLS)
def test_node_ws_server(node_echo: str, run: Callable[..., tuple[str, float]]) -> None:
    assert run(node_echo)[0] == "Olá, WebSocket!"
    assert run(node_echo, compression=False)[0] == "Olá, WebSocket!"


# --- resources ---


def test_no_descriptor_leak(servers: Servers, raw_server: Callable[[RawHandler], str]) -> None:
    refused = f"ws://127.0.0.1:{unused_port()}/"
    for url in (servers.ws + "/", servers.ws + "/binary", refused):
        call(url)
    before = open_descriptors()
    for _ in range(100):
        for url in (servers.ws + "/", servers.ws + "/binary", servers.ws + "/close", refused):
            call(url)
            call_async(url)
    assert descriptors_settle_to(before)


def test_many_async_calls_at_once(servers: Servers) -> None:
    async def run() -> list[str]:
        return await asyncio.gather(
            *(wsprobe.send_recv_async(servers.ws + "/", f"n{i}") for i in range(200))
        )

    assert asyncio.run(run()) == [f"n{i}" for i in range(200)]


def test_blocking_call_does_not_start_threads_for_literal_ips(servers: Servers) -> None:
    before = threading.active_count()
    wsprobe.send_recv(servers.ws + "/", "x")
    assert threading.active_count() == before


@pytest.mark.parametrize("run", CALLS)
def test_close_wait_after_the_reply_is_bounded(
    raw_server: Callable[[RawHandler], str], run: Callable[..., tuple[str, float]]
) -> None:
    outcome, elapsed = run(raw_server(reply_then_ignore_the_close), timeout=10)
    assert outcome == "here you go"
    assert 0.2 < elapsed < 0.25 + MARGIN  # the 0.25 s close wait, not the 10 s timeout
