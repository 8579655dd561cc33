"""Loopback ports and raw-socket server behaviours for ``raw_server``."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from tests.conftest import Servers
from tests.support.wire import RawHandler, accept_upgrade, frame, read_request


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connections_to(port: int) -> int:
    """Sockets of this machine connected or connecting to ``127.0.0.1:port`` now: the
    kernel's count (``/proc/net/tcp``), exact whenever it is read, unlike a server's."""
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            # remote address, state: 01 established, 02 SYN sent
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] in ("01", "02"):
                count += 1
    return count


def ports(servers: Servers) -> list[int]:
    """The suite's open ports and one closed port, for generated URLs."""
    return [urlsplit(servers.ws).port or 0, urlsplit(servers.wss).port or 0, unused_port()]


def http_reply(status_line: str, body: bytes = b"") -> RawHandler:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(f"{status_line}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        conn.recv(1024)

    return handler


def never_answers(conn: socket.socket) -> None:
    read_request(conn)
    conn.recv(1024)


def reply_then_ignore_the_close(conn: socket.socket) -> None:
    accept_upgrade(conn)
    conn.recv(65536)
    conn.sendall(frame(0x1, b"here you go"))
    # Never answers the close frame and never closes: waits until the client hangs up.
    conn.settimeout(10)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
