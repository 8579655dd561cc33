"""The asyncio transport behind ``send_recv_async`` and ``connect_async``.

Many calls share one event loop (the Lua runtime drives hundreds at once), so this
transport is a bare :class:`asyncio.Protocol` feeding the same :class:`ClientCore`
as the blocking transport: no streams, no task per connection, bare timers rather
than ``asyncio.wait_for``, and the socket is aborted the moment a call's deadline
passes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

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
    import datetime

__all__ = ["AsyncConnection", "exchange"]


async def exchange(target: Target, options: Options, text: str) -> Result:
    """Run one ``send_recv`` conversation on the running loop."""
    started = time.perf_counter()
    deadline = started + options.timeout
    connection = await AsyncConnection.open(target, options, deadline)
    try:
        sent = time.perf_counter()
        if connection.core.open:
            # Otherwise the server closed right after its 101: recv() says so.
            connection.send_text(text)
        message = await connection.recv(deadline, abort_on_timeout=True)
        replied = time.perf_counter()
    finally:
        await connection.close(deadline=deadline)
    return result_of(
        target.display,
        connection.opening,
        connection.core,
        reply_of(message),
        replied - sent,
        time.perf_counter() - started,
    )


class _Stream(asyncio.Protocol):
    """Feeds a :class:`ClientCore` and wakes whoever waits when there is news."""

    def __init__(self, core: ClientCore, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.error: OSError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.core.receive_data(data)
        self.flush()
        self._wake()

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
        assert self.transport is not None
        if not self.transport.is_closing():
            for chunk in self.core.data_to_send():
                if chunk:  # an empty chunk asks for a half-close; closing follows anyway
                    self.transport.write(chunk)

    async def wait(self, until: float) -> bool:
        """Wait for news until ``until`` (perf_counter time); False if none came."""
        left = until - time.perf_counter()
        if left <= 0:
            return False
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(left, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class AsyncConnection:
    """An open WebSocket connection on the running event loop.

    Deadlines are ``time.perf_counter()`` instants; failures raise wsprobe errors.
    """

    def __init__(self, stream: _Stream, opening: Opening) -> None:
        self._stream = stream
        self.core = stream.core
        self.opening = opening

    @classmethod
    async def open(cls, target: Target, options: Options, deadline: float) -> AsyncConnection:
        """Resolve, connect, TLS, upgrade: all before ``deadline``."""
        loop = asyncio.get_running_loop()
        started = resolved = connected = tls_done = time.perf_counter()
        stream = _Stream(ClientCore(target, options), loop)
        address: Address | None = None
        expires: datetime.datetime | None = None
        try:
            async with asyncio.timeout(deadline - started):
                addresses = literal_address(target) or await _resolve_host(loop, target)
                resolved = time.perf_counter()
                address = await _connect(loop, target, addresses, stream)
                connected = tls_done = time.perf_counter()
                if target.secure:
                    expires = await _handshake(loop, target, options, stream)
                    tls_done = time.perf_counter()
                stream.flush()
                while not stream.core.upgraded and stream.core.error is None:
                    if not await stream.wait(deadline):
                        raise TimeoutError
        except TimeoutError:
            _abort(stream)
            raise timeout_error(target, options.timeout) from None
        except BaseException:
            _abort(stream)
            raise
        if not stream.core.upgraded:
            # An error that arrived with the 101 belongs to the first recv().
            assert stream.core.error is not None
            _abort(stream)
            if stream.error is not None and stream.core.status is None:
                raise connect_error(target, stream.error)
            raise stream.core.error
        assert address is not None
        opening = Opening(
            peer=peer_name(address),
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
        """Send one binary message."""
        self.core.send_binary(data)
        self._stream.flush()

    async def recv(self, deadline: float, *, abort_on_timeout: bool = False) -> Message:
        """The next whole data message.

        Raises :class:`NoResponse` when the connection ends first (with the close
        code) or when ``deadline`` passes (``timed_out``; then the connection stays
        usable unless ``abort_on_timeout``).
        """
        await self._wait_until(lambda: bool(self.core.messages), deadline, abort_on_timeout)
        return self.core.messages.popleft()

    async def ping(self, deadline: float) -> float:
        """Send a ping and wait for its pong; return the round trip in seconds."""
        payload = os.urandom(4)
        started = time.perf_counter()
        self.core.send_ping(payload)
        self._stream.flush()
        await self._wait_until(lambda: payload in self.core.pongs, deadline, False)
        self.core.pongs.discard(payload)
        return time.perf_counter() - started

    async def _wait_until(
        self, ready: Callable[[], bool], deadline: float, abort_on_timeout: bool
    ) -> None:
        # A lost connection is in the core too: connection_lost() feeds it the EOF.
        while not ready():
            self.core.raise_if_ended()
            if not await self._stream.wait(deadline):
                if abort_on_timeout:
                    _abort(self._stream)
                raise NoResponse(timed_out=True)

    async def close(
        self, code: int = 1000, reason: str = "", *, deadline: float | None = None
    ) -> None:
        """Close, giving the server a short, bounded chance to answer; never raises."""
        stream = self._stream
        until = time.perf_counter() + CLOSE_WAIT
        if deadline is not None:
            until = min(until, deadline)
        if stream.transport is None or stream.lost.done():
            return
        self.core.send_close(code, reason)
        stream.flush()
        while not stream.lost.done() and not self.core.closed:
            if not await stream.wait(until):
                break
        if stream.lost.done():
            stream.transport.close()
        else:
            stream.transport.abort()


def _abort(stream: _Stream) -> None:
    if stream.transport is not None:
        stream.transport.abort()


async def _resolve_host(loop: asyncio.AbstractEventLoop, target: Target) -> list[Address]:
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise connect_error(target, exc) from exc
    return sort_addresses(infos)  # type: ignore[arg-type]  # AF_INET/AF_INET6 only


async def _connect(
    loop: asyncio.AbstractEventLoop, target: Target, addresses: list[Address], stream: _Stream
) -> Address:
    failure: OSError | None = None
    factory: Callable[[], _Stream] = lambda: stream  # noqa: E731
    for address in addresses:
        family, sockaddr = address
        try:
            await loop.create_connection(
                factory, host=sockaddr[0], port=sockaddr[1], family=family
            )
        except OSError as exc:
            failure = exc
            continue
        return address
    assert failure is not None
    raise connect_error(target, failure) from failure


async def _handshake(
    loop: asyncio.AbstractEventLoop, target: Target, options: Options, stream: _Stream
) -> datetime.datetime | None:
    assert stream.transport is not None
    context = tls_context(options.cafile, options.insecure)
    try:
        transport = await loop.start_tls(
            stream.transport, stream, context, server_hostname=target.host
        )
    except OSError as exc:
        raise connect_error(target, exc) from exc
    stream.transport = cast(asyncio.Transport, transport)
    tls = stream.transport.get_extra_info("ssl_object")
    return certificate_expiry(tls) if isinstance(tls, ssl.SSLObject) else None
