"""Servers that misbehave on purpose, and what a test measures of the agent beside them.

Each behaviour is a ``RawHandler`` for ``raw_server`` (one thread per connection, the
connection closed by the server when the test ends). Every loop here is bounded in
time, so a client that never hangs up cannot keep a thread alive past its test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.wire import RawHandler, accept_upgrade, frame, read_request

__all__ = [
    "FLOOD_SECONDS",
    "Switchable",
    "continuation_flood",
    "directory_bytes",
    "fetch_within",
    "holds_silently",
    "ping_flood",
    "replies",
    "rss_bytes",
    "upgrade_reply",
]

#: The longest a flooding server keeps sending to one connection.
FLOOD_SECONDS = 15.0


def upgrade_reply(head: bytes) -> RawHandler:
    """Answer the upgrade request with ``head`` (status line and headers, as bytes), then
    wait for the client to hang up."""

    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head)
        _drain(conn)

    return handler


def replies(payload: bytes, *, opcode: int = 0x1, after: float = 0.0) -> RawHandler:
    """Accept the upgrade, read the client's message and send ``payload`` as one frame,
    ``after`` seconds later (a slow server: past the client's timeout)."""

    def handler(conn: socket.socket) -> None:
        accept_upgrade(conn)
        conn.recv(65536)
        time.sleep(after)
        conn.sendall(frame(opcode, payload))
        _drain(conn)

    return handler


def continuation_flood(conn: socket.socket) -> None:
    """A text message that never ends: one 1-byte continuation frame after another."""
    accept_upgrade(conn)
    conn.recv(65536)
    conn.sendall(frame(0x1, b"a", fin=False))
    _flood(conn, frame(0x0, b"a", fin=False))


def ping_flood(conn: socket.socket) -> None:
    """Pings, and nothing else, as fast as the client takes them."""
    accept_upgrade(conn)
    conn.recv(65536)
    _flood(conn, frame(0x9, b"p"))


def holds_silently(conn: socket.socket) -> None:
    """Accept the connection and never answer (until the client hangs up)."""
    _drain(conn, FLOOD_SECONDS)


class Switchable:
    """A handler whose reply a test changes between runs: ``reply`` is sent raw after the
    request, ``upgrade`` first answers the handshake correctly."""

    def __init__(self) -> None:
        self.reply = b""
        self.upgrade = False
        self.lock = threading.Lock()

    def set(self, reply: bytes, *, upgrade: bool) -> None:
        with self.lock:
            self.reply, self.upgrade = reply, upgrade

    def __call__(self, conn: socket.socket) -> None:
        with self.lock:
            reply, upgrade = self.reply, self.upgrade
        if upgrade:
            accept_upgrade(conn)
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                conn.recv(65536)
        else:
            read_request(conn)
        conn.sendall(reply)
        _drain(conn, 3)


def _flood(conn: socket.socket, chunk: bytes) -> None:
    burst = chunk * 256
    deadline = time.monotonic() + FLOOD_SECONDS
    conn.settimeout(1)
    while time.monotonic() < deadline:
        try:
            conn.sendall(burst)
        except TimeoutError:
            continue
        except OSError:
            return


def _drain(conn: socket.socket, seconds: float = FLOOD_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    conn.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def fetch_within(url: str, seconds: float) -> tuple[int, str] | None:
    """GET ``url``: status and body, or ``None`` when no answer came within ``seconds``."""
    try:
        with urllib.request.urlopen(url, timeout=seconds) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()
    except (TimeoutError, urllib.error.URLError, ConnectionError):
        return None


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def directory_bytes(path: Path) -> int:
    """The bytes of the files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue
    return total
