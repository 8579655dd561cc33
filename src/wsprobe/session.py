"""Sessions: several exchanges on one connection, blocking (:class:`Session`) or asyncio.

``send_recv`` and sessions open connections with the same code (the transports'
``Connection.open``), so their behaviour cannot drift: same options, same errors,
same deadline rules. Each operation has its own deadline: ``timeout`` when given,
else the session's ``timeout`` option.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from .aio import AsyncConnection
from .blocking import Connection, Deadline
from .errors import BinaryMessage
from .options import Options, seconds
from .protocol import ClientCore, Message
from .url import parse_url

__all__ = ["AsyncSession", "Session", "open_session", "open_session_async"]

C = TypeVar("C", Connection, AsyncConnection)


class _Base(Generic[C]):
    """What both kinds of session share: the connection, its facts, the rules."""

    def __init__(self, connection: C, options: Options, binary: bool) -> None:
        self._connection: C = connection
        self.core: ClientCore = connection.core
        self._options = options
        self.binary = binary

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self.core.subprotocol

    @property
    def close_code(self) -> int | None:
        """The server's close code, once it closed."""
        return self.core.close_code

    @property
    def close_reason(self) -> str:
        """The server's close reason, once it closed."""
        return self.core.close_reason

    def _payload(self, message: Message) -> str | bytes:
        kind, payload = message
        if kind == "binary" and not self.binary:
            raise BinaryMessage
        return payload

    def _seconds(self, timeout: float | None) -> float:
        return self._options.timeout if timeout is None else seconds("timeout", timeout)


class Session(_Base[Connection]):
    """A blocking WebSocket session; use it as a context manager, or call :meth:`close`."""

    def send(self, text: str) -> None:
        """Send one text message."""
        self._connection.send_text(text, self._deadline(None))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message."""
        self._connection.send_binary(bytes(data), self._deadline(None))

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next data message: text as ``str``; binary as ``bytes`` when the session
        was opened with ``binary=True``, else ``ws binary messages not supported``.

        A timeout raises ``no response from web socket`` and leaves the session usable.
        """
        return self._payload(self._connection.recv(self._deadline(timeout)))

    def ping(self, timeout: float | None = None) -> float:
        """Ping the server; return the round trip in seconds."""
        return self._connection.ping(self._deadline(timeout))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (at most 0.25 s waiting for the server); idempotent."""
        self._connection.close(code, reason)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _deadline(self, timeout: float | None) -> Deadline:
        return Deadline(self._seconds(timeout))


class AsyncSession(_Base[AsyncConnection]):
    """The asyncio twin of :class:`Session`."""

    def send(self, text: str) -> None:
        """Send one text message (buffered at once: nothing to await)."""
        self._connection.send_text(text)

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message."""
        self._connection.send_binary(bytes(data))

    async def recv(self, timeout: float | None = None) -> str | bytes:
        """As :meth:`Session.recv`."""
        return self._payload(await self._connection.recv(self._deadline(timeout)))

    async def ping(self, timeout: float | None = None) -> float:
        """As :meth:`Session.ping`."""
        return await self._connection.ping(self._deadline(timeout))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """As :meth:`Session.close`."""
        await self._connection.close(code, reason)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _deadline(self, timeout: float | None) -> float:
        return time.perf_counter() + self._seconds(timeout)


def open_session(url: str, options: Options, *, binary: bool = False) -> Session:
    """Open a blocking session with validated options."""
    target = parse_url(url)
    return Session(Connection.open(target, options, Deadline(options.timeout)), options, binary)


async def open_session_async(url: str, options: Options, *, binary: bool = False) -> AsyncSession:
    """Open an asyncio session with validated options."""
    target = parse_url(url)
    deadline = time.perf_counter() + options.timeout
    return AsyncSession(await AsyncConnection.open(target, options, deadline), options, binary)


class Connecting:
    """What :func:`wsprobe.connect_async` returns: await it, or ``async with`` it."""

    def __init__(self, url: str, options: Options, binary: bool) -> None:
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
