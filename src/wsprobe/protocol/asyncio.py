"""The asyncio transport behind ``send_recv_async`` and ``connect_async``.

Many calls share one event loop (the Lua runtime drives hundreds at once), so this
transport is a bare :class:`asyncio.Protocol` feeding the same :class:`ClientCore`
as the blocking transport: no streams, no task per connection, bare timers rather
than ``asyncio.wait_for``, and the socket is aborted the moment a call's deadline
passes. Its twin, :mod:`.sync`, has the same functions and methods in the same order.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..errors import NoResponse
from ..models import Result
from ..options import CLOSE_WAIT, Options
from ..url import Target
from ._oserrors import map_connect_errors
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
    import datetime

__all__ = ["AsyncConnection", "connect_first", "exchange"]


async def exchange(target: Target, options: Options, text: str) -> Result:
    """Run one ``send_recv`` conversation on the running loop (``total`` as in :mod:`.sync`)."""
    deadline = Deadline(options.timeout)
    connection = await AsyncConnection.open(target, options, deadline)
    try:
        with Learning(connection.opening, connection.core):
            sent = time.perf_counter()
            if connection.core.open:
                # Otherwise the server closed right after its 101: recv() says so.
                connection.send_text(text)
            message = await connection.recv(deadline)
            replied = time.perf_counter()
            reply = reply_of(message)
    finally:
        await connection.close(deadline=deadline)
    return result_of(
        target.display, connection.opening, connection.core, reply, replied - sent, replied
    )


class AsyncConnection:
    """An open WebSocket connection on the running event loop.

    Every operation takes a :class:`Deadline`; failures raise wsprobe errors.
    """

    __slots__ = ("_stream", "core", "opening")

    def __init__(self, stream: _Stream, opening: Opening) -> None:
        self._stream = stream
        self.core = stream.core
        self.opening = opening

    @classmethod
    async def open(
        cls,
        target: Target,
        options: Options,
        deadline: Deadline,
        *,
        hold: Callable[[int], None] | None = None,
    ) -> AsyncConnection:
        """Resolve, connect, TLS, upgrade: all before ``deadline`` (the TLS context
        is ready before the clock starts, as in :mod:`.sync`).

        ``hold``, when given, is told how many bytes of received data the connection
        keeps unread (in steps of :data:`HOLD_STEP`) as that changes; when it raises,
        the connection is dropped with what it kept, and its next call raises that."""
        loop = asyncio.get_running_loop()
        context = tls_context(options.cafile, options.insecure) if target.secure else None
        started = time.perf_counter()
        stream = _Stream(ClientCore(target, options), loop, hold)
        facts: dict[str, Any] = {"phase": "dns"}
        with map_connect_errors(target, options.timeout, facts):
            try:
                async with asyncio.timeout(deadline.left()):
                    addresses = literal_address(target) or await _resolve(loop, target)
                    resolved = time.perf_counter()
                    facts["phase"] = "connect"
                    sock, address = await connect_first(loop, addresses)
                    facts.update(phase="tls" if context else "upgrade", peer=peer_name(address))
                    await loop.create_connection(lambda: stream, sock=sock)
                    connected = tls_done = time.perf_counter()
                    expires = None
                    if context is not None:
                        expires = await _handshake(loop, target, context, stream)
                        tls_done = time.perf_counter()
                        facts["phase"] = "upgrade"
                    stream.flush()
                    while not stream.core.upgraded and stream.core.error is None:
                        if not await stream.wait(deadline):
                            raise TimeoutError
                        stream.raise_if_failed()
                if not stream.core.upgraded:
                    # A connection lost before any HTTP reply is the network's doing.
                    if stream.error is not None and stream.core.status is None:
                        raise stream.error
                    # An error that arrived with the 101 belongs to the first recv().
                    assert stream.core.error is not None
                    raise stream.core.error
            except BaseException:
                stream.abort()
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
        return cls(stream, opening)

    def send_text(self, text: str) -> None:
        """Send one text message (written at once; the kernel buffers it)."""
        self.core.send_text(text)
        self._stream.flush()

    def send_binary(self, data: bytes) -> None:
        """Send one binary message (written at once; the kernel buffers it)."""
        self.core.send_binary(data)
        self._stream.flush()

    async def drain(self) -> None:
        """Wait while more than the transport's high-water mark waits to be written
        (the server reads slower than we send), or until the connection is lost."""
        stream = self._stream
        while stream.writing_paused and not stream.lost.done():
            await stream.wait(Deadline(_DRAIN_WAIT))
        stream.raise_if_failed()

    async def recv(self, deadline: Deadline) -> Message:
        """The next whole data message.

        Raises :class:`~wsprobe.errors.NoResponse` when the connection ends first
        (with the close code) or when ``deadline`` passes (``timed_out``; the
        connection stays usable).
        """
        await self._wait_until(lambda: bool(self.core.messages), deadline)
        message = self.core.take_message()
        self._stream.read_more()
        return message

    async def ping(self, deadline: Deadline) -> float:
        """Send a ping and wait for its pong; return the round trip in seconds."""
        payload = os.urandom(4)
        started = time.perf_counter()
        self.core.send_ping(payload)
        await self._wait_until(lambda: payload in self.core.pongs, deadline)
        self.core.pongs.discard(payload)
        return time.perf_counter() - started

    async def close(
        self, code: int = 1000, reason: str = "", *, deadline: Deadline | None = None
    ) -> None:
        """Close, giving the server a short, bounded chance to answer; never raises."""
        stream = self._stream
        until = Deadline(CLOSE_WAIT) if deadline is None else deadline.capped(CLOSE_WAIT)
        if stream.lost.done():
            return
        self.core.send_close(code, reason)
        stream.flush()
        while not stream.lost.done() and not self.core.closed:
            if not await stream.wait(until):
                break
        if stream.lost.done():
            stream.close()
        else:
            stream.abort()

    async def _wait_until(self, ready: Callable[[], bool], deadline: Deadline) -> None:
        # A lost connection is in the core too: connection_lost() feeds it the EOF,
        # so there is no OSError to map here.
        stream = self._stream
        stream.flush()
        while not ready():
            stream.raise_if_failed()
            self.core.raise_if_ended()
            if not await stream.wait(deadline):
                raise NoResponse(timed_out=True)


class _Stream(asyncio.Protocol):
    """Feeds a :class:`ClientCore` and wakes whoever waits when there is news."""

    __slots__ = (
        "core",
        "error",
        "failure",
        "held",
        "hold",
        "loop",
        "lost",
        "paused",
        "transport",
        "waiter",
        "writing_paused",
    )

    def __init__(
        self,
        core: ClientCore,
        loop: asyncio.AbstractEventLoop,
        hold: Callable[[int], None] | None = None,
    ) -> None:
        self.core = core
        self.loop = loop
        self.hold = hold
        self.held = 0
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.error: OSError | None = None
        self.failure: Exception | None = None
        self.paused = False
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.core.receive_data(data)
            self.flush()
            self.tell_held()
            if self.transport is not None and _read_ahead_full(self.core):
                # Messages nobody reads must not pile up in memory: stop reading, and
                # let the kernel's buffers and TCP's window hold the server back.
                self.transport.pause_reading()
                self.paused = True
        except Exception as exc:
            # Raised here, it would only reach the loop's exception handler while the
            # caller waits for its deadline: the connection is dropped and the call
            # waiting on it (or the next) raises it.
            self.failure = exc
            self.abort()
            self.core.drop_unread()
        self._wake()

    def raise_if_failed(self) -> None:
        """Raise what failed while handling received data, if anything did."""
        if self.failure is not None:
            raise self.failure

    def pause_writing(self) -> None:
        self.writing_paused = True
        self.core.set_backlogged(True)

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.core.set_backlogged(False)
        self.flush()
        self._wake()

    def tell_held(self) -> None:
        """Tell ``hold`` what is kept unread now, when that changed by a step."""
        if self.hold is not None:
            held = -(-self.core.unread // HOLD_STEP) * HOLD_STEP
            if held != self.held:
                self.hold(held)
                self.held = held

    def read_more(self) -> None:
        """A message was taken: read from the socket again if reading was paused."""
        self.tell_held()
        if self.paused and self.transport is not None and not _read_ahead_full(self.core):
            self.paused = False
            self.transport.resume_reading()

    def eof_received(self) -> None:
        self.core.receive_eof()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError):
            self.error = exc
        self.core.receive_eof()
        if not self.lost.done():
            self.lost.set_result(None)
        self._wake()

    def flush(self) -> None:
        """Write what the core has to send, unless the transport is closing."""
        if self.transport is not None and not self.transport.is_closing():
            for chunk in self.core.data_to_send():
                if chunk:  # an empty chunk asks for a half-close; closing follows anyway
                    self.transport.write(chunk)

    async def wait(self, deadline: Deadline) -> bool:
        """Wait for news until ``deadline``; False if none came."""
        left = deadline.left()
        if left <= 0:
            return False
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(left, _complete, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def close(self) -> None:
        """Close the transport, letting buffered data go out."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)


# drain() waits in rounds of this many seconds (a round ends early on any news).
_DRAIN_WAIT = 60.0

#: Received data messages a connection keeps for its reader, at most (in count and
#: in bytes, text counted in characters), before it stops reading from the socket.
READ_AHEAD_MESSAGES = 1024
READ_AHEAD_BYTES = 1 << 20

#: ``hold`` hears of the unread data in steps of this many bytes.
HOLD_STEP = 16 << 10


def _read_ahead_full(core: ClientCore) -> bool:
    messages = core.messages
    return len(messages) >= READ_AHEAD_MESSAGES or (
        bool(messages) and core.queued >= READ_AHEAD_BYTES
    )


def _complete(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


async def _resolve(loop: asyncio.AbstractEventLoop, target: Target) -> list[Address]:
    infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    return sort_addresses(infos)  # type: ignore[arg-type]  # AF_INET/AF_INET6 only


async def connect_first(
    loop: asyncio.AbstractEventLoop, addresses: list[Address]
) -> tuple[socket.socket, Address]:
    """Race ``addresses`` the Happy Eyeballs way, as :func:`.sync.connect_first`
    does, with a task per attempt; the caller's timeout bounds the whole.

    Not ``create_connection(happy_eyeballs_delay=...)``: uvloop, which the Lua
    runner uses, does not take it, and it would resolve the host again.
    """
    if len(addresses) == 1:
        # Nothing to race (a literal IP, one resolver answer): no task, no wait.
        [address] = addresses
        sock = _socket_for(address)
        try:
            await loop.sock_connect(sock, address[1])
        except BaseException:
            sock.close()
            raise
        return sock, address
    queue = interleave(addresses)
    attempts: dict[asyncio.Task[None], tuple[socket.socket, Address]] = {}
    failure: OSError | None = None
    try:
        while queue or attempts:
            if queue:
                address = queue.pop(0)
                try:
                    sock = _socket_for(address)
                except OSError as exc:
                    failure = exc
                    continue
                task = loop.create_task(loop.sock_connect(sock, address[1]))
                attempts[task] = (sock, address)
            done, _ = await asyncio.wait(
                attempts,
                timeout=ATTEMPT_DELAY if queue else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                sock, address = attempts.pop(task)
                error = task.exception()
                if error is None:
                    return sock, address
                sock.close()
                if not isinstance(error, OSError):
                    raise error
                failure = error
        assert failure is not None
        raise failure
    finally:
        # Cancelled and finished before their sockets close, so that no event loop
        # watches a descriptor number that may be reused.
        for task in attempts:
            task.cancel()
        if attempts:
            await asyncio.wait(attempts)
        for sock, _ in attempts.values():
            sock.close()


def _socket_for(address: Address) -> socket.socket:
    sock = socket.socket(address[0], socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _handshake(
    loop: asyncio.AbstractEventLoop, target: Target, context: ssl.SSLContext, stream: _Stream
) -> datetime.datetime | None:
    assert stream.transport is not None
    transport = await loop.start_tls(
        stream.transport, stream, context, server_hostname=target.host
    )
    stream.transport = cast(asyncio.Transport, transport)
    tls = stream.transport.get_extra_info("ssl_object")
    return certificate_expiry(tls) if isinstance(tls, ssl.SSLObject) else None
