"""The blocking transport behind :func:`wsprobe.send_recv`: one socket, no threads.

A plain blocking socket with a per-operation timeout taken from one deadline is the
cheapest correct transport for a one-shot call (no event loop to build, no thread
hand-offs); the deadline is re-applied before every operation, so no server can
stretch a call past it, however it trickles.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import Error, NoResponse
from .exchange import OneShot, Result, Timings
from .netutil import (
    Address,
    certificate_expiry,
    connect_error,
    literal_address,
    peer_name,
    sort_addresses,
    timeout_error,
    tls_error,
)
from .options import CLOSE_WAIT, Options, tls_context
from .url import Target

if TYPE_CHECKING:
    import ssl

__all__ = ["exchange"]

_READ_SIZE = 262144


class _Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        left = self.at - self._clock()
        if left <= 0:
            raise TimeoutError
        return left


def exchange(target: Target, options: Options, text: str) -> Result:
    """Run one ``send_recv`` conversation; raise a wsprobe error on failure."""
    clock = time.perf_counter
    started = clock()
    deadline = _Deadline(options.timeout, clock)
    shot = OneShot(target, options, text, clock)
    try:
        resolving = clock()
        addresses = literal_address(target) or _resolve(target, deadline)
        resolved = clock()
        sock, address = _connect(target, addresses, deadline)
    except TimeoutError:
        raise timeout_error(target, options.timeout) from None
    connected = clock()
    expires = None
    try:
        tls_done = connected
        if target.secure:
            sock = _handshake(sock, target, options, deadline)
            tls_done = clock()
            expires = certificate_expiry(sock)
        _converse(sock, shot, target, deadline)
        if shot.lingering:
            _linger(sock, shot, deadline)
    finally:
        sock.close()
    finished = clock()
    outcome = shot.outcome
    if isinstance(outcome, Error):
        raise outcome
    assert outcome is not None
    core = shot.core
    return Result(
        reply=outcome,
        url=target.display,
        peer=peer_name(address),
        status=core.status or 101,
        subprotocol=core.subprotocol,
        timings=Timings(
            dns=resolved - resolving,
            connect=connected - resolved,
            tls=tls_done - connected if target.secure else None,
            upgrade=shot.upgraded_at - tls_done,
            reply=shot.replied_at - shot.upgraded_at,
            total=finished - started,
        ),
        close_code=core.close_code,
        close_reason=core.close_reason,
        cert_expires=expires,
    )


def _resolve(target: Target, deadline: _Deadline) -> list[Address]:
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
    target: Target, addresses: list[Address], deadline: _Deadline
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
    sock: socket.socket, target: Target, options: Options, deadline: _Deadline
) -> ssl.SSLSocket:
    context = tls_context(options.cafile, options.insecure)
    import ssl

    tls = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    try:
        tls.settimeout(deadline.remaining())
        tls.do_handshake()
    except BaseException as exc:
        # wrap_socket() moved the descriptor into ``tls``: it is ours to close.
        tls.close()
        if isinstance(exc, TimeoutError):
            raise timeout_error(target, options.timeout) from None
        if isinstance(exc, ssl.SSLError):
            raise tls_error(target, exc) from exc
        if isinstance(exc, OSError):
            raise connect_error(target, exc) from exc
        raise
    return tls


def _converse(sock: socket.socket, shot: OneShot, target: Target, deadline: _Deadline) -> None:
    core = shot.core
    try:
        _write(sock, shot, deadline)
        while shot.outcome is None:
            sock.settimeout(deadline.remaining())
            data = sock.recv(_READ_SIZE)
            if data:
                shot.feed(data)
            else:
                shot.feed_eof()
            _write(sock, shot, deadline)
    except TimeoutError:
        if not core.upgraded:
            raise timeout_error(target, deadline.seconds) from None
        raise NoResponse(timed_out=True) from None
    except OSError as exc:
        if not core.upgraded:
            raise connect_error(target, exc) from exc
        raise core.no_response() from exc


def _linger(sock: socket.socket, shot: OneShot, deadline: _Deadline) -> None:
    # The reply is in hand: give the server a short, bounded chance to finish the
    # close handshake, and never let it keep the caller waiting.
    until = min(deadline.at, time.perf_counter() + CLOSE_WAIT)
    try:
        _write(sock, shot, deadline)
        while shot.lingering:
            left = until - time.perf_counter()
            if left <= 0:
                return
            sock.settimeout(left)
            data = sock.recv(_READ_SIZE)
            if not data:
                return
            shot.feed(data)
            _write(sock, shot, deadline)
    except OSError:
        return


def _write(sock: socket.socket, shot: OneShot, deadline: _Deadline) -> None:
    for chunk in shot.data_to_send():
        sock.settimeout(deadline.remaining())
        sock.sendall(chunk)
