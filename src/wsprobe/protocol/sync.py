"""The blocking transport: one socket, no threads, behind ``send_recv`` and ``connect``.

A plain blocking socket with a per-operation timeout taken from a :class:`Deadline`
is the cheapest correct transport for a one-shot call (no event loop to build, no
thread hand-offs); the deadline is re-applied before every operation, so no server
can stretch a call past it, however it trickles. Its twin, :mod:`.asyncio`, has the
same functions and methods in the same order.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..models import Result
from ..options import CLOSE_WAIT, Options
from ..url import Target
from ._oserrors import map_connect_errors, map_receive_errors
from .addresses import (
    ATTEMPT_DELAY,
    Address,
    interleave,
    literal_address,
    peer_name,
    sort_addresses,
)
from .core import ClientCore, Message
from .deadline import Deadline
from .exchange import Learning, Opening, reply_of, result_of
from .tls import certificate_expiry, tls_context

if TYPE_CHECKING:
    import ssl

__all__ = ["Connection", "connect_first", "exchange"]

_READ_SIZE = 262144


def exchange(target: Target, options: Options, text: str) -> Result:
    """Run one ``send_recv`` conversation; raise a wsprobe error on failure.

    The close that follows the reply is not part of ``total``: it measures the
    service, not how long the server takes to answer our close.
    """
    deadline = Deadline(options.timeout)
    connection = Connection.open(target, options, deadline)
    try:
        with Learning(connection.opening, connection.core):
            sent = time.perf_counter()
            if connection.core.open:
                # Otherwise the server closed right after its 101: recv() says so.
                connection.send_text(text, deadline)
            message = connection.recv(deadline)
            replied = time.perf_counter()
            reply = reply_of(message)
    finally:
        connection.close(deadline=deadline)
    return result_of(
        target.display, connection.opening, connection.core, reply, replied - sent, replied
    )


class Connection:
    """An open WebSocket connection over a blocking socket.

    Every operation takes a :class:`Deadline`; failures raise wsprobe errors.
    """

    __slots__ = ("_sock", "core", "opening")

    def __init__(self, sock: socket.socket, core: ClientCore, opening: Opening) -> None:
        self._sock = sock
        self.core = core
        self.opening = opening

    @classmethod
    def open(cls, target: Target, options: Options, deadline: Deadline) -> Connection:
        """Resolve, connect, TLS, upgrade: all before ``deadline``.

        The TLS context is ready before the clock starts: building it is ours to
        pay once per process, not the server's ``tls`` time.
        """
        context = tls_context(options.cafile, options.insecure) if target.secure else None
        started = time.perf_counter()
        core = ClientCore(target, options)
        sock: socket.socket | None = None
        facts: dict[str, Any] = {"phase": "dns"}
        with map_connect_errors(target, options.timeout, facts):
            try:
                addresses = literal_address(target) or _resolve(target, deadline)
                resolved = time.perf_counter()
                facts["phase"] = "connect"
                sock, address = connect_first(addresses, deadline)
                facts.update(phase="tls" if context else "upgrade", peer=peer_name(address))
                connected = tls_done = time.perf_counter()
                expires = None
                if context is not None:
                    sock = _handshake(sock, target, context, deadline)
                    tls_done = time.perf_counter()
                    expires = certificate_expiry(sock)
                    facts["phase"] = "upgrade"
                _write(sock, core, deadline)
                while not core.upgraded:
                    _read(sock, core, deadline)
                    # An error that arrived with the 101 belongs to the first recv().
                    if core.error is not None and not core.upgraded:
                        raise core.error
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        opening = Opening(
            peer=peer_name(address),
            started=started,
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

    def drain(self) -> None:
        """Nothing to wait for: a send returns once the kernel took all of it (the
        twin of the asyncio transport's ``drain``, where writes are buffered)."""

    def recv(self, deadline: Deadline) -> Message:
        """The next whole data message.

        Raises :class:`~wsprobe.errors.NoResponse` when the connection ends first
        (with the close code) or when ``deadline`` passes (``timed_out``; the
        connection stays usable).
        """
        self._wait_until(lambda: bool(self.core.messages), deadline)
        return self.core.take_message()

    def ping(self, deadline: Deadline) -> float:
        """Send a ping and wait for its pong; return the round trip in seconds."""
        payload = os.urandom(4)
        started = time.perf_counter()
        self.core.send_ping(payload)
        self._wait_until(lambda: payload in self.core.pongs, deadline)
        self.core.pongs.discard(payload)
        return time.perf_counter() - started

    def close(
        self, code: int = 1000, reason: str = "", *, deadline: Deadline | None = None
    ) -> None:
        """Close, giving the server a short, bounded chance to answer; never raises."""
        until = Deadline(CLOSE_WAIT) if deadline is None else deadline.capped(CLOSE_WAIT)
        core = self.core
        try:
            core.send_close(code, reason)
            _write(self._sock, core, until)
            while not core.closed:
                _read(self._sock, core, until)
                _write(self._sock, core, until)
        except OSError:  # TimeoutError included: the server had its chance
            pass
        finally:
            self._sock.close()

    def _wait_until(self, ready: Callable[[], bool], deadline: Deadline) -> None:
        core = self.core
        with map_receive_errors(core):
            self._flush(deadline)
            while not ready():
                core.raise_if_ended()
                _read(self._sock, core, deadline)
                self._flush(deadline)

    def _flush(self, deadline: Deadline) -> None:
        _write(self._sock, self.core, deadline)


def _read(sock: socket.socket, core: ClientCore, deadline: Deadline) -> None:
    sock.settimeout(deadline.remaining())
    data = sock.recv(_READ_SIZE)
    if data:
        core.receive_data(data)
    else:
        core.receive_eof()


def _write(sock: socket.socket, core: ClientCore, deadline: Deadline) -> None:
    for chunk in core.data_to_send():
        if chunk:  # an empty chunk asks for a half-close; closing follows anyway
            sock.settimeout(deadline.remaining())
            sock.sendall(chunk)


def _resolve(target: Target, deadline: Deadline) -> list[Address]:
    # getaddrinfo() has no timeout of its own: run it on a daemon thread so the
    # deadline holds (and a stuck resolver cannot keep the process alive). Imported
    # here: a literal address needs no resolver, and a `wsprobe check` of one no threads.
    import threading

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
        raise found
    return sort_addresses(found)  # type: ignore[arg-type]


def connect_first(addresses: list[Address], deadline: Deadline) -> tuple[socket.socket, Address]:
    """Race ``addresses`` the Happy Eyeballs way (see :mod:`.addresses`): the first
    socket to connect, with its address; the other attempts are closed.

    Non-blocking sockets and a selector: an attempt starts when the previous one
    has been pending for :data:`ATTEMPT_DELAY` or has failed; the last failure is
    raised when all fail, :class:`TimeoutError` when ``deadline`` passes first.
    """
    if len(addresses) == 1:
        # Nothing to race (a literal IP, one resolver answer): a blocking connect
        # under the deadline, without a selector.
        [address] = addresses
        sock = socket.socket(address[0], socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(deadline.remaining())
            sock.connect(address[1])
        except BaseException:
            sock.close()
            raise
        return sock, address
    queue = interleave(addresses)
    pending: dict[socket.socket, Address] = {}
    failure: OSError | None = None
    next_attempt = 0.0
    selector = selectors.DefaultSelector()
    try:
        while True:
            now = time.perf_counter()
            if queue and now >= next_attempt:
                address = queue.pop(0)
                try:
                    sock = _start_attempt(address)
                except OSError as exc:  # unreachable at once: try the next now
                    failure = exc
                    continue
                pending[sock] = address
                selector.register(sock, selectors.EVENT_WRITE)
                next_attempt = now + ATTEMPT_DELAY
            if not pending:
                if queue:
                    continue
                assert failure is not None
                raise failure
            wait = deadline.remaining()
            if queue:
                wait = min(wait, max(0.0, next_attempt - now))
            for key, _ in selector.select(wait):
                sock = cast(socket.socket, key.fileobj)
                address = pending.pop(sock)
                selector.unregister(sock)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error == 0:
                    sock.setblocking(True)
                    return sock, address
                sock.close()
                failure = OSError(error, os.strerror(error))
                next_attempt = 0.0  # a failed attempt hands over at once
    finally:
        for sock in pending:
            sock.close()
        selector.close()


def _start_attempt(address: Address) -> socket.socket:
    family, sockaddr = address
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        error = sock.connect_ex(sockaddr)
        if error not in (0, errno.EINPROGRESS):
            raise OSError(error, os.strerror(error))
    except BaseException:
        sock.close()
        raise
    return sock


def _handshake(
    sock: socket.socket, target: Target, context: ssl.SSLContext, deadline: Deadline
) -> ssl.SSLSocket:
    tls = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    try:
        tls.settimeout(deadline.remaining())
        tls.do_handshake()
    except BaseException:
        # wrap_socket() moved the descriptor into ``tls``: it is ours to close.
        tls.close()
        raise
    return tls
