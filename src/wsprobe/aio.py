"""The asyncio transport behind :func:`wsprobe.send_recv_async`.

Many calls share one event loop (the Lua runtime drives hundreds at once), so this
transport is a bare :class:`asyncio.Protocol` feeding the same :class:`OneShot` as
the blocking transport: no streams, no tasks per connection, and the socket is
aborted the moment the deadline passes.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import time
from typing import cast

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

__all__ = ["exchange"]


class _Stream(asyncio.Protocol):
    """Feeds a :class:`OneShot` and wakes the caller when there is news."""

    def __init__(self, shot: OneShot, loop: asyncio.AbstractEventLoop) -> None:
        self.shot = shot
        self.transport: asyncio.Transport | None = None
        self.news = loop.create_future()
        self.lost = loop.create_future()
        self.error: OSError | None = None
        self.gone = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.shot.feed(data)
        self.flush()

    def eof_received(self) -> None:
        self.shot.feed_eof()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if isinstance(exc, OSError):
            self.error = exc
        if self.shot.outcome is None and exc is None:
            self.shot.feed_eof()
        if not self.lost.done():
            self.lost.set_result(None)
        self._notify()

    def flush(self) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            for chunk in self.shot.data_to_send():
                self.transport.write(chunk)
        if self.shot.outcome is not None or not self.shot.lingering:
            self._notify()

    def _notify(self) -> None:
        if not self.news.done():
            self.news.set_result(None)


async def exchange(target: Target, options: Options, text: str) -> Result:
    """Run one ``send_recv`` conversation on the running loop."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    started = clock()
    shot = OneShot(target, options, text, clock)
    stream = _Stream(shot, loop)
    resolving = resolved = connected = tls_done = started
    address: Address | None = None
    expires = None
    try:
        async with asyncio.timeout(options.timeout):
            resolving = clock()
            addresses = literal_address(target) or await _resolve(loop, target)
            resolved = clock()
            address = await _connect(loop, target, addresses, stream)
            connected = tls_done = clock()
            if target.secure:
                expires = await _handshake(loop, target, options, stream)
                tls_done = clock()
            stream.flush()
            await stream.news
    except TimeoutError:
        if stream.transport is not None:
            stream.transport.abort()
        if not shot.core.upgraded:
            raise timeout_error(target, options.timeout) from None
        raise NoResponse(timed_out=True) from None
    except BaseException:
        if stream.transport is not None:
            stream.transport.abort()
        raise
    assert stream.transport is not None
    assert address is not None
    if shot.outcome is None:
        # The connection was lost before any outcome: say what the OS said.
        stream.transport.abort()
        if not shot.core.upgraded and stream.error is not None:
            raise connect_error(target, stream.error)
        shot.outcome = shot.core.no_response()
    await _linger(stream, options, started)
    finished = clock()
    outcome = shot.outcome
    if isinstance(outcome, Error):
        raise outcome
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


async def _resolve(loop: asyncio.AbstractEventLoop, target: Target) -> list[Address]:
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise connect_error(target, exc) from exc
    return sort_addresses(infos)  # type: ignore[arg-type]  # AF_INET/AF_INET6 only


async def _connect(
    loop: asyncio.AbstractEventLoop, target: Target, addresses: list[Address], stream: _Stream
) -> Address:
    failure: OSError | None = None
    for address in addresses:
        family, sockaddr = address
        try:
            await loop.create_connection(
                lambda: stream, host=sockaddr[0], port=sockaddr[1], family=family
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
    except ssl.SSLError as exc:
        raise tls_error(target, exc) from exc
    except OSError as exc:
        raise connect_error(target, exc) from exc
    stream.transport = cast(asyncio.Transport, transport)
    tls = stream.transport.get_extra_info("ssl_object")
    return certificate_expiry(tls) if isinstance(tls, ssl.SSLObject) else None


async def _linger(stream: _Stream, options: Options, started: float) -> None:
    # As in the blocking transport: a short, bounded wait for the server's close.
    # A bare timer on the `lost` future costs far less than asyncio.wait().
    assert stream.transport is not None
    left = min(CLOSE_WAIT, started + options.timeout - time.perf_counter())
    if stream.shot.lingering and left > 0 and not stream.lost.done():
        timer = asyncio.get_running_loop().call_later(left, _give_up, stream.lost)
        await stream.lost
        timer.cancel()
    if stream.gone:
        stream.transport.close()
    else:
        stream.transport.abort()


def _give_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
