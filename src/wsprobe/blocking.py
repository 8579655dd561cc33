"""The blocking transport: one socket, no threads, behind ``send_recv`` and ``connect``.

A plain blocking socket with a per-operation timeout taken from a deadline is the
cheapest correct transport for a one-shot call (no event loop to build, no thread
hand-offs); the deadline is re-applied before every operation, so no server can
stretch a call past it, however it trickles.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import NoResponse
from .exchange import Opening, Result, reply_of, result_of
from .netutil import (
    Address,
    certificate_expiry,
    connect_error,
    literal_address,
    peer_name,
    sort_addresses,
    timeout_error,
)
from .options import CLOSE_WAIT, Options, tls_context
from .protocol import ClientCore, Message
from .url import Target

if TYPE_CHECKING:
    import ssl

__all__ = ["Connection", "Deadline", "exchange"]

_READ_SIZE = 262144


class Deadline:
    """A point in time; :meth:`remaining` raises :class:`TimeoutError` once it passed."""

    def __init__(self, seconds: float) -> None:
        self.at = time.perf_counter() + seconds

    def remaining(self) -> float:
        left = self.at - time.perf_counter()
        if left <= 0:
            raise TimeoutError
        return left


def exchange(target: Target, options: Options, text: str) -> Result:
    """Run one ``send_recv`` conversation; raise a wsprobe error on failure."""
    started = time.perf_counter()
    deadline = Deadline(options.timeout)
    connection = Connection.open(target, options, deadline)
    try:
        sent = time.perf_counter()
        if connection.core.open:
            # Otherwise the server closed right after its 101: recv() says so.
            connection.send_text(text, deadline)
        message = connection.recv(deadline)
        replied = time.perf_counter()
    finally:
        connection.close(deadline=deadline)
    return result_of(
        target.display,
        connection.opening,
        connection.core,
        reply_of(message),
        replied - sent,
        time.perf_counter() - started,
    )


class Connection:
    """An open WebSocket connection over a blocking socket.

    Every operation takes a :class:`Deadline`; failures raise wsprobe errors.
    """

    def __init__(self, sock: socket.socket, core: ClientCore, opening: Opening) -> None:
        self.sock = sock
        self.core = core
        self.opening = opening

    @classmethod
    def open(cls, target: Target, options: Options, deadline: Deadline) -> Connection:
        """Resolve, connect, TLS, upgrade: all before ``deadline``."""
        started = time.perf_counter()
        try:
            addresses = literal_address(target) or _resolve(target, deadline)
            resolved = time.perf_counter()
            sock, address = _connect(target, addresses, deadline)
            connected = tls_done = time.perf_counter()
            expires = None
            if target.secure:
                sock = _handshake(sock, target, options, deadline)
                tls_done = time.perf_counter()
                expires = certificate_expiry(sock)
        except TimeoutError:
            raise timeout_error(target, options.timeout) from None
        core = ClientCore(target, options)
        try:
            _write(sock, core, deadline)
            while not core.upgraded:
                _read(sock, core, deadline)
                # An error that arrived with the 101 belongs to the first recv().
                if core.error is not None and not core.upgraded:
                    raise core.error
        except TimeoutError:
            sock.close()
            raise timeout_error(target, options.timeout) from None
        except OSError as exc:
            sock.close()
            raise connect_error(target, exc) from exc
        except BaseException:
            sock.close()
            raise
        opening = Opening(
            peer=peer_name(address),
            dns=resolved - started,
            connect=connected - resolved,
            tls=tls_done - connected if target.secure else None,
            upgrade=time.perf_counter() - tls_done,
            cert_expires=expires,
        )
        return cls(sock, core, opening)

    def send_text(self, text: str, deadline: Deadline) -> None:
        """Send one text message."""
        self.core.send_text(text)
        self._flush(deadline)

    def send_binary(self, data: bytes, deadline: Deadline) -> None:
        """Send one binary message."""
        self.core.send_binary(data)
        self._flush(deadline)

    def recv(self, deadline: Deadline) -> Message:
        """The next whole data message.

        Raises :class:`NoResponse` when the connection ends first (with the close
        code) or when ``deadline`` passes (``timed_out``; the connection stays usable).
        """
        self._read_until(lambda: bool(self.core.messages), deadline)
        return self.core.messages.popleft()

    def ping(self, deadline: Deadline) -> float:
        """Send a ping and wait for its pong; return the round trip in seconds."""
        payload = os.urandom(4)
        started = time.perf_counter()
        self.core.send_ping(payload)
        self._read_until(lambda: payload in self.core.pongs, deadline)
        self.core.pongs.discard(payload)
        return time.perf_counter() - started

    def _read_until(self, ready: Callable[[], bool], deadline: Deadline) -> None:
        core = self.core
        try:
            self._flush(deadline)
            while not ready():
                core.raise_if_ended()
                _read(self.sock, core, deadline)
                self._flush(deadline)
        except TimeoutError:
            raise NoResponse(timed_out=True) from None
        except OSError as exc:
            # A reset or a TLS failure after the upgrade: the connection is over.
            core.error = core.no_response()
            raise core.error from exc

    def close(
        self, code: int = 1000, reason: str = "", *, deadline: Deadline | None = None
    ) -> None:
        """Close, giving the server a short, bounded chance to answer; never raises."""
        until = time.perf_counter() + CLOSE_WAIT
        if deadline is not None:
            until = min(until, deadline.at)
        core = self.core
        try:
            core.send_close(code, reason)
            _write(self.sock, core, None)
            while not core.closed and (left := until - time.perf_counter()) > 0:
                self.sock.settimeout(left)
                data = self.sock.recv(_READ_SIZE)
                if not data:
                    break
                core.receive_data(data)
                _write(self.sock, core, None)
        except OSError:
            pass
        finally:
            self.sock.close()

    def _flush(self, deadline: Deadline) -> None:
        _write(self.sock, self.core, deadline)


def _read(sock: socket.socket, core: ClientCore, deadline: Deadline) -> None:
    sock.settimeout(deadline.remaining())
    data = sock.recv(_READ_SIZE)
    if data:
        core.receive_data(data)
    else:
        core.receive_eof()


def _write(sock: socket.socket, core: ClientCore, deadline: Deadline | None) -> None:
    for chunk in core.data_to_send():
        if chunk:  # an empty chunk asks for a half-close; closing follows anyway
            sock.settimeout(deadline.remaining() if deadline is not None else CLOSE_WAIT)
            sock.sendall(chunk)


def _resolve(target: Target, deadline: Deadline) -> list[Address]:
    # getaddrinfo() has no timeout of its own: run it on a daemon thread so the
    # deadline holds (and a stuck resolver cannot keep the process alive).
    done = threading.Event()
    box: list[object] = []

    def lookup() -> None:
        try:
            box.append(socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))
        except OSError as exc:
            box.append(exc)
        done.set()

    threading.Thread(target=lookup, name="wsprobe-resolve", daemon=True).start()
    if not done.wait(deadline.remaining()):
        raise TimeoutError
    found = box[0]
    if isinstance(found, OSError):
        raise connect_error(target, found) from found
    return sort_addresses(found)  # type: ignore[arg-type]


def _connect(
    target: Target, addresses: list[Address], deadline: Deadline
) -> tuple[socket.socket, Address]:
    failure: OSError | None = None
    for address in addresses:
        family, sockaddr = address
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(deadline.remaining())
            sock.connect(sockaddr)
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock, address
    assert failure is not None
    raise connect_error(target, failure) from failure


def _handshake(
    sock: socket.socket, target: Target, options: Options, deadline: Deadline
) -> ssl.SSLSocket:
    context = tls_context(options.cafile, options.insecure)
    tls = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    try:
        tls.settimeout(deadline.remaining())
        tls.do_handshake()
    except BaseException as exc:
        # wrap_socket() moved the descriptor into ``tls``: it is ours to close.
        tls.close()
        if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
            raise connect_error(target, exc) from exc
        raise
    return tls
