"""The asyncio twin of :mod:`wsprobe.session`: :class:`AsyncSession`, same methods, same order."""

from __future__ import annotations

from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any

from .options import Options, binary_data, boolean, close_frame
from .options import text as text_argument
from .protocol.asyncio import AsyncConnection
from .protocol.deadline import Deadline
from .session import SessionBase
from .url import parse_url

__all__ = ["AsyncSession", "Connecting", "open_session_async"]


class AsyncSession(SessionBase[AsyncConnection]):
    """The asyncio twin of :class:`~wsprobe.Session`; ``async with`` it, or await :meth:`close`."""

    __slots__ = ()

    def send(self, text: str) -> None:
        """Send one text message (buffered at once: nothing to await)."""
        self._connection.send_text(text_argument("data", text))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message (buffered at once: nothing to await)."""
        self._connection.send_binary(binary_data("data", data))

    async def drain(self) -> None:
        """Wait until what was sent is mostly written out: the server reads it, or
        the connection ends. Sends apply backpressure through it."""
        await self._connection.drain()

    async def recv(self, timeout: float | None = None) -> str | bytes:
        """As :meth:`Session.recv <wsprobe.Session.recv>`."""
        return self._payload(await self._connection.recv(self._deadline(timeout)))

    async def ping(self, timeout: float | None = None) -> float:
        """As :meth:`Session.ping <wsprobe.Session.ping>`."""
        return await self._connection.ping(self._deadline(timeout))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """As :meth:`Session.close <wsprobe.Session.close>`."""
        await self._connection.close(*close_frame(code, reason))

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def open_session_async(
    url: str,
    options: Options,
    *,
    binary: Any = False,
    hold: Callable[[int], None] | None = None,
) -> AsyncSession:
    """Open an asyncio session with validated options (``hold``: as
    :meth:`AsyncConnection.open <wsprobe.protocol.asyncio.AsyncConnection.open>`)."""
    target = parse_url(url)
    flag = boolean("binary", binary)
    connection = await AsyncConnection.open(target, options, Deadline(options.timeout), hold=hold)
    return AsyncSession(connection, options, flag)


class Connecting:
    """What :func:`wsprobe.connect_async` returns: await it, or ``async with`` it."""

    def __init__(self, url: str, options: Options, binary: Any) -> None:
        # Checked now, so that a bad flag is the caller's error at once, not at await.
        boolean("binary", binary)
        self._opening = open_session_async(url, options, binary=binary)
        self._session: AsyncSession | None = None

    def __await__(self) -> Generator[Any, None, AsyncSession]:
        return self._opening.__await__()

    async def __aenter__(self) -> AsyncSession:
        self._session = await self._opening
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
