"""ClientCore on its own: bytes in, messages, errors and bytes out — no socket, no clock."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from tests.support.wire import GUID, frame
from wsprobe.errors import (
    ConnectError,
    NoResponse,
    ProtocolViolation,
    ReplyTooLarge,
    SessionClosed,
)
from wsprobe.options import make_options
from wsprobe.protocol import core as core_module
from wsprobe.protocol.core import ClientCore
from wsprobe.url import parse_url

URL = "ws://user:pw@example.test:8080/path?q=1"


def new_core(url: str = URL, **options: Any) -> tuple[ClientCore, bytes]:
    core = ClientCore(parse_url(url), make_options(timeout=5, **options))
    return core, b"".join(core.data_to_send())


def upgraded(**options: Any) -> ClientCore:
    core, request = new_core(**options)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
    core.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    assert core.upgraded
    assert core.error is None
    return core


def test_the_request_carries_the_url_and_the_options() -> None:
    _, request = new_core(headers={"X-One": "1"}, origin="https://o.test")
    head = request.decode("latin-1").split("\r\n")
    assert head[0] == "GET /path?q=1 HTTP/1.1"
    assert "Host: example.test:8080" in head
    assert "Authorization: Basic " + base64.b64encode(b"user:pw").decode() in head
    assert "X-One: 1" in head
    assert "Origin: https://o.test" in head


def test_headers_replace_host_and_authorization() -> None:
    _, request = new_core(headers=[("Host", "h.test"), ("Authorization", "Bearer t")])
    head = request.decode("latin-1").split("\r\n")
    assert [line for line in head if line.startswith(("Host:", "Authorization:"))] == [
        "Host: h.test",
        "Authorization: Bearer t",
    ]


def test_an_authorization_header_without_credentials_in_the_url() -> None:
    _, request = new_core("ws://example.test/", headers={"Authorization": "Bearer t"})
    assert b"\r\nAuthorization: Bearer t\r\n" in request


def test_messages_pings_and_fragments() -> None:
    core = upgraded()
    core.receive_data(frame(0x1, "olá".encode()) + frame(0x2, b"\x00\x01"))
    core.receive_data(frame(0x9, b"hi"))
    assert b"".join(core.data_to_send())[:1] == b"\x8a"  # the pong, masked
    core.receive_data(frame(0x1, b"frag", fin=False) + frame(0x0, b"ment"))
    assert list(core.messages) == [("text", "olá"), ("binary", b"\x00\x01"), ("text", "fragment")]


def test_a_close_from_the_server() -> None:
    core = upgraded()
    core.receive_data(frame(0x8, (1008).to_bytes(2, "big") + b"go away"))
    assert core.close_received
    assert (core.close_code, core.close_reason) == (1008, "go away")
    with pytest.raises(NoResponse) as info:
        core.raise_if_ended()
    assert (info.value.close_code, info.value.close_reason) == (1008, "go away")
    with pytest.raises(SessionClosed, match=r"^send ws://example\.test:8080/path\?q=1: "):
        core.send_text("late")


def test_a_close_between_fragments_is_answered_normally() -> None:
    core = upgraded()
    core.receive_data(frame(0x1, b"part", fin=False) + frame(0x8, (1000).to_bytes(2, "big")))
    assert core.error is None
    assert core.close_code == 1000
    assert b"".join(core.data_to_send())[:2] == b"\x88\x82"  # our close, code only


@pytest.mark.parametrize(
    ("reply", "kind", "message"),
    [
        (
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            "http",
            "server rejected WebSocket upgrade: HTTP 404 Not Found",
        ),
        (
            b"HTTP/1.0 403 Forbidden\r\n\r\n",
            "http",
            "server rejected WebSocket upgrade: HTTP 403 Forbidden",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "protocol", "the server's reply is not HTTP"),
        # A status is three digits: no absurd number reaches a result or a database.
        (b"HTTP/1.1 99999999999999999999 X\r\n\r\n", "protocol", "the server's reply is not HTTP"),
        (b"HTTP/1.1 -101 X\r\n\r\n", "protocol", "the server's reply is not HTTP"),
        (
            "HTTP/1.1 \u0661\u0660\u0661 X\r\n\r\n".encode(),
            "protocol",
            "the server's reply is not HTTP",
        ),
    ],
)
def test_refused_upgrades(reply: bytes, kind: str, message: str) -> None:
    core, _ = new_core()
    core.receive_data(reply)
    core.receive_eof()
    assert isinstance(core.error, ConnectError)
    assert (core.error.kind, core.error.detail) == (kind, message)


def test_the_connection_ends_during_the_upgrade() -> None:
    core, _ = new_core()
    core.receive_data(b"HTTP/1.1 101 Switching")
    core.receive_eof()
    assert str(core.error) == (
        "connect ws://example.test:8080/path?q=1: "
        "connection closed by the server during the upgrade"
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (frame(0x1, b"\xff\xfe"), "protocol error: invalid UTF-8 in text message"),
        (frame(0x1, b"x", mask=True), "protocol error: incorrect masking"),
        (frame(0x1, b"x", rsv=0x40), "protocol error: reserved bits must be 0"),
        (frame(0x3, b"x"), "protocol error: invalid opcode"),
    ],
)
def test_protocol_violations(data: bytes, error: str) -> None:
    core = upgraded(compression=False)
    core.receive_data(data)
    assert isinstance(core.error, ProtocolViolation)
    assert str(core.error) == f"receive ws://example.test:8080/path?q=1: {error}"
    assert core.closed


def test_a_reply_over_max_size() -> None:
    core = upgraded(max_size=10)
    core.receive_data(frame(0x1, b"x" * 11))
    assert isinstance(core.error, ReplyTooLarge)


def test_eof_without_a_close_frame_is_no_response() -> None:
    core = upgraded()
    core.receive_eof()
    assert isinstance(core.error, NoResponse)
    assert core.error.close_code is None


class Clock:
    """The protocol core's clock, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(core_module, "monotonic", lambda: self.now)


@pytest.mark.parametrize(
    ("flood", "message"),
    [
        (
            frame(0x0, b"a", fin=False),
            "too many small frames: 1093 frames for 1093 bytes of data in 0.0 s",
        ),
        (frame(0x9, b"p"), "too many small frames: 1025 frames for 1 bytes of data in 0.0 s"),
        (frame(0xA, b""), "too many small frames: 1025 frames for 1 bytes of data in 0.0 s"),
    ],
    ids=["continuation", "ping", "pong"],
)
def test_a_flood_of_small_frames_fails_the_connection(
    flood: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Clock(monkeypatch)
    core = upgraded()
    core.receive_data(frame(0x1, b"a", fin=False))
    core.receive_data(flood * 100_000)
    assert isinstance(core.error, ProtocolViolation)
    assert str(core.error).endswith(f": protocol error: {message}")
    # The pongs owed before the flood was cut, no more.
    assert len(b"".join(core.data_to_send())) < 1100 * 16


def test_keepalive_pings_for_days_without_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    core = upgraded()
    for _ in range(20_000):  # one every 10 s: more than two days
        clock.now += 10
        core.receive_data(frame(0x9, b"keepalive"))
    assert core.error is None
    core.receive_data(frame(0x1, b"still here"))
    assert core.messages == [("text", "still here")]


def test_the_allowance_grows_with_time_not_without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    core = upgraded()
    clock.now += 10  # quiet for 10 s: 1,000 frames more, then a flood
    core.receive_data(frame(0x9, b"p") * 100_000)
    assert str(core.error).endswith(
        ": protocol error: too many small frames: 2025 frames for 0 bytes of data in 10.0 s"
    )


def test_the_count_restarts_with_each_whole_message(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    core = upgraded()
    clock.now += 3600  # an hour idle, then a message: the hour is not credited again
    core.receive_data(frame(0x1, b"x"))
    core.receive_data(frame(0x9, b"p") * 100_000)
    assert str(core.error).endswith(
        ": protocol error: too many small frames: 1025 frames for 0 bytes of data in 0.0 s"
    )


def test_small_frames_within_the_allowance_and_a_reset_per_message() -> None:
    core = upgraded(max_size=4 << 20)
    # Autobahn 9.3.1: 4 MiB in 64-byte fragments, then the same again.
    chunk = b"x" * 64
    message = frame(0x1, chunk, fin=False) + frame(0x0, chunk, fin=False) * 65534
    message += frame(0x0, chunk)
    for _ in range(2):
        core.receive_data(frame(0x9, b"p") * 1000 + message)
    assert core.error is None
    assert [len(text) for _, text in core.messages] == [4 << 20, 4 << 20]


def test_pongs_owed_while_backlogged_are_held_the_latest_one_sent_after() -> None:
    # A server that pings and never reads: each pong would wait in the write buffer.
    core = upgraded()
    core.set_backlogged(True)
    for round_ in range(50):
        pings = b"".join(frame(0x9, f"{round_}-{i}".encode()) for i in range(1000))
        core.receive_data(pings + frame(0x1, b"x"))
    assert core.error is None
    assert len(core.messages) == 50
    assert b"".join(core.data_to_send()) == b""
    core.set_backlogged(False)
    sent = b"".join(core.data_to_send())
    # One masked pong (2 + 4 + 6 bytes) carrying the latest ping's payload, unmasked here.
    assert sent[:2] == b"\x8a\x86"
    mask, payload = sent[2:6], sent[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) == b"49-999"
    core.set_backlogged(False)
    assert b"".join(core.data_to_send()) == b""
