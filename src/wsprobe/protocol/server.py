"""A WebSocket server for the local demo server and the tests: ``websockets``' own.

On the server side ``websockets``' asyncio server is the right tool as it is; this
module only narrows it to what wsprobe needs and keeps its exceptions inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ._websockets import ConnectionClosed, Subprotocol, asyncio_serve
from .core import LOGGER

if TYPE_CHECKING:
    import ssl

    from ._websockets import Server, ServerConnection

__all__ = ["Peer", "RunningServer", "start_server"]


class Peer:
    """One client connected to a server started by :func:`start_server`."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    @property
    def path(self) -> str:
        """The request target of the upgrade: path and query."""
        request = self._connection.request
        assert request is not None
        return request.path

    async def recv(self) -> str | bytes | None:
        """The next message, or ``None`` once the connection is closed."""
        try:
            return await self._connection.recv()
        except ConnectionClosed:
            return None

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message; a closed peer is ignored."""
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with this code and reason."""
        await self._connection.close(code, reason)

    async def wait_closed(self) -> None:
        """Return once the client has gone."""
        await self._connection.wait_closed()


class RunningServer:
    """A server from :func:`start_server`; :meth:`close` stops it."""

    def __init__(self, server: Server) -> None:
        self._server = server
        #: The port it listens on (useful after asking for port 0).
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, close every connection and wait for handlers to end."""
        self._server.close()
        await self._server.wait_closed()


async def start_server(
    handler: Callable[[Peer], Awaitable[None]],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    subprotocols: Sequence[str] | None = None,
) -> RunningServer:
    """Listen for WebSocket clients and run ``handler`` for each one."""

    async def handle(connection: ServerConnection) -> None:
        await handler(Peer(connection))

    server = await asyncio_serve(
        handle,
        host,
        port,
        ssl=ssl_context,
        subprotocols=[Subprotocol(name) for name in subprotocols] if subprotocols else None,
        max_size=None,
        logger=LOGGER,
    )
    return RunningServer(server)
