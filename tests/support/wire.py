"""WebSocket bytes on raw sockets, below what a library would allow: a server that runs a
handler per connection, and the pieces of the protocol a misbehaving server writes.

No pytest here: ``bench/`` starts these servers too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable

__all__ = ["GUID", "RawHandler", "RawServer", "accept_upgrade", "frame", "read_request"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

RawHandler = Callable[[socket.socket], None]


class RawServer:
    """A TCP server that runs ``handler`` on a thread for every connection."""

    def __init__(self, handler: RawHandler) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handler = handler
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handler(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.connections:
            conn.close()


def read_request(conn: socket.socket) -> bytes:
    """Read an HTTP request head from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def accept_upgrade(conn: socket.socket, *, accept: str | None = None) -> None:
    """Answer the upgrade correctly (or with the given Sec-WebSocket-Accept); a client
    that hung up before its request is a :class:`ConnectionError`, as a socket's."""
    request = read_request(conn).decode()
    key = next(
        (
            line.split(":", 1)[1].strip()
            for line in request.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        ),
        None,
    )
    if key is None:
        raise ConnectionError(f"no upgrade request: {request[:100]!r}")
    if accept is None:
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = False
) -> bytes:
    """Serialize one frame as a (possibly misbehaving) server would."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload
