"""Sessions: several exchanges on one connection; :class:`Session` is the blocking one.

``send_recv`` and sessions open connections with the same code (the transports'
``open``), so their behaviour cannot drift: same options, same errors, same
deadline rules. Each operation has its own deadline: ``timeout`` when given, else
the session's ``timeout`` option. The asyncio twin, :class:`AsyncSession`, lives in
:mod:`wsprobe.async_session` with the same methods in the same order, so that the
blocking path never imports asyncio.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import BinaryMessage
from .options import Options, binary_data, boolean, close_frame, seconds
from .options import text as text_argument
from .protocol.deadline import Deadline
from .protocol.sync import Connection
from .url import parse_url

if TYPE_CHECKING:
    from .protocol.asyncio import AsyncConnection
    from .protocol.core import ClientCore, Message

__all__ = ["Session", "SessionBase", "open_session"]

C = TypeVar("C", "Connection", "AsyncConnection")


class SessionBase(Generic[C]):
    """What both kinds of session share: the connection, its facts, the rules."""

    __slots__ = ("_connection", "_options", "binary", "core")

    def __init__(self, connection: C, options: Options, binary: bool) -> None:
        self._connection: C = connection
        self.core: ClientCore = connection.core
        self._options: Options = options
        self.binary: bool = binary

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

    def _deadline(self, timeout: float | None) -> Deadline:
        return Deadline(self._options.timeout if timeout is None else seconds("timeout", timeout))


class Session(SessionBase[Connection]):
    """A blocking WebSocket session; use it as a context manager, or call :meth:`close`."""

    __slots__ = ()

    def send(self, text: str) -> None:
        """Send one text message."""
        self._connection.send_text(text_argument("data", text), self._deadline(None))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message."""
        self._connection.send_binary(binary_data("data", data), self._deadline(None))

    def drain(self) -> None:
        """Wait until what was sent is written out: a blocking send already has (the
        twin of :meth:`AsyncSession.drain <wsprobe.AsyncSession.drain>`)."""
        self._connection.drain()

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
        """Close the connection (at most 0.25 s waiting for the server); idempotent.

        A code a client may not send (RFC 6455) or a reason over 123 bytes raises
        :class:`~wsprobe.errors.InvalidOption` and leaves the session open.
        """
        self._connection.close(*close_frame(code, reason))

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_session(url: str, options: Options, *, binary: Any = False) -> Session:
    """Open a blocking session with validated options."""
    target = parse_url(url)
    flag = boolean("binary", binary)
    return Session(Connection.open(target, options, Deadline(options.timeout)), options, flag)
