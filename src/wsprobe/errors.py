"""The exceptions of wsprobe.

Every error the public API raises is an :class:`Error`; ``str(exc)`` is exactly the
one-line message a user sees (a Lua script gets the same text as its error value).
The two messages documented by the ``ws`` module are constants here so that nothing
else spells them. Each class says whose fault it is::

    Error
    ├── InvalidURL          the caller's URL
    ├── InvalidOption       the caller's option or argument
    ├── ScriptCallError     what a script handed a function (json.decode of bad text, ...)
    │   └── InvalidDate     time.parse of text that is not an RFC 3339 date-time
    ├── ConnectError        the server, the network or TLS, before the upgrade completed
    │                       (or before an HTTP request was sent)
    ├── NoResponse          no data message: the connection ended, or the deadline passed
    ├── BinaryMessage       the first data message was binary
    ├── ProtocolViolation   the server broke RFC 6455 after the upgrade
    ├── ReplyTooLarge       the reply was larger than max_size
    ├── SessionClosed       a session was used after its connection closed
    ├── HttpError           an HTTP request failed once connected (deadline, size, bad reply)
    └── ServiceError        a module of scripts refused a call ("store.put: ...")
        ├── StoreError      the store refused a value, or its database failed
        └── CacheError      the run's cache refused a value or a mark

Foreign exceptions (``OSError``, ``websockets``', ``lupa``'s, ``aiohttp``'s,
``sqlite3``'s) never escape: each
layer maps them at one boundary, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any, Literal

from .redaction import one_line, redact

__all__ = [
    "BINARY_MESSAGE",
    "NO_RESPONSE",
    "BinaryMessage",
    "CacheError",
    "ConnectError",
    "ConnectErrorKind",
    "Error",
    "HttpError",
    "HttpErrorKind",
    "InvalidDate",
    "InvalidOption",
    "InvalidURL",
    "NoResponse",
    "ProtocolViolation",
    "ReplyTooLarge",
    "ScriptCallError",
    "ServiceError",
    "SessionClosed",
    "StoreError",
    "forget_tracebacks",
    "one_line",
]

NO_RESPONSE = "no response from web socket"
BINARY_MESSAGE = "ws binary messages not supported"

ConnectErrorKind = Literal["refused", "dns", "tls", "http", "timeout", "protocol", "network"]
HttpErrorKind = Literal["timeout", "too-large", "protocol", "network"]


class Error(Exception):
    """Root of every wsprobe error; ``str()`` is the user-facing message.

    ``facts`` holds what the call had learnt when it failed, for ``-v`` and
    ``--json``: ``phase`` (``dns``, ``connect``, ``tls``, ``upgrade`` or ``reply``:
    the one that failed), ``peer`` (once connected), ``status`` (once the server
    answered the upgrade), ``location`` (of a redirect), ``subprotocol``.
    """

    def __init__(self, message: str) -> None:
        # One line whatever a value quoted in it held: a message is a log line.
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.facts: dict[str, Any] = {}

    def __str__(self) -> str:
        return self.message


class InvalidURL(Error):
    """The caller passed a URL that is not a usable ``ws://`` or ``wss://`` URL.

    ``url`` is kept and shown as :func:`wsprobe.redaction.redact` makes it: without
    any ``user:password@`` part, on one line, whatever shape the text had.
    """

    def __init__(self, url: str, reason: str) -> None:
        url = redact(url)
        super().__init__(f'invalid url "{url}": {reason}')
        self.url = url
        self.reason = reason


class InvalidOption(Error):
    """The caller passed an option (or argument) with an unknown name or a wrong value."""

    def __init__(self, name: str, reason: str, *, kind: str = "option") -> None:
        super().__init__(f"invalid {kind} {name}: {reason}")
        self.name = name
        self.reason = reason


class ScriptCallError(Error):
    """A function a script called cannot work with what it was given.

    The message is the script's error value as is, e.g.
    ``json.decode: invalid JSON: expecting value at line 1 column 1``.
    """


class ConnectError(Error):
    """The connection could not be opened: the server, the network or TLS failed.

    ``kind`` says which, ``url`` is the URL without credentials and ``status`` is
    the HTTP status when the server refused the upgrade.
    """

    def __init__(
        self, url: str, kind: ConnectErrorKind, detail: str, *, status: int | None = None
    ) -> None:
        super().__init__(f"connect {url}: {detail}")
        self.url = url
        self.kind: ConnectErrorKind = kind
        self.detail = detail
        self.status = status


class NoResponse(Error):
    """The connection ended, or the deadline passed, before any data message arrived.

    The message is always exactly ``no response from web socket``. When the server
    sent a close frame, ``close_code`` and ``close_reason`` carry it; ``timed_out``
    tells a deadline apart from a close.
    """

    def __init__(
        self,
        *,
        close_code: int | None = None,
        close_reason: str = "",
        timed_out: bool = False,
    ) -> None:
        super().__init__(NO_RESPONSE)
        self.close_code = close_code
        self.close_reason = close_reason
        self.timed_out = timed_out

    def describe(self) -> str:
        """What happened, for people: the message plus the close or the timeout."""
        if self.timed_out:
            return f"{self.message} (timed out)"
        if self.close_code is None:
            return f"{self.message} (connection closed without a close frame)"
        reason = f" {self.close_reason}" if self.close_reason else ""
        return f"{self.message} (server closed with {self.close_code}{reason})"


class BinaryMessage(Error):
    """The first data message of the reply was binary; the message is exact."""

    def __init__(self) -> None:
        super().__init__(BINARY_MESSAGE)


class ProtocolViolation(Error):
    """The server broke RFC 6455 after the upgrade (bad UTF-8, masked frames, ...)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"receive {url}: protocol error: {detail}")
        self.url = url
        self.detail = detail


class ReplyTooLarge(Error):
    """The reply was larger than ``max_size``."""

    def __init__(self, url: str, max_size: int) -> None:
        super().__init__(f"receive {url}: reply larger than max_size of {max_size} bytes")
        self.url = url
        self.max_size = max_size


class SessionClosed(Error):
    """A session was used after its connection closed (by either side).

    ``close_code`` and ``close_reason`` are those of the server's close frame, if any.
    """

    def __init__(self, url: str, close_code: int | None = None, close_reason: str = "") -> None:
        super().__init__(f"send {url}: the connection is closed")
        self.url = url
        self.close_code = close_code
        self.close_reason = close_reason


class HttpError(Error):
    """An HTTP request failed after its connection was open (failing to connect is a
    :class:`ConnectError`, as for WebSockets).

    ``kind`` says how; ``url`` is the URL without credentials.
    """

    def __init__(self, method: str, url: str, kind: HttpErrorKind, detail: str) -> None:
        super().__init__(f"http {method} {url}: {detail}")
        self.method = method
        self.url = url
        self.kind: HttpErrorKind = kind
        self.detail = detail


class ServiceError(Error):
    """A module of scripts (``store``, ``cache``) refused a call; the message names the
    operation first: ``store.put: value larger than 1048576 bytes as JSON``."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation = operation
        self.detail = detail


class StoreError(ServiceError):
    """The persistent store refused a value or could not reach its database."""


class CacheError(ServiceError):
    """The run's cache refused an operation: ``cache.mark_pending: key 'k' is already pending``."""


class InvalidDate(ScriptCallError):
    """A date is not in RFC 3339 form: ``time.parse: invalid RFC 3339 date "15/01/2024"``."""

    def __init__(self, text: str) -> None:
        super().__init__(f'time.parse: invalid RFC 3339 date "{text}"')
        self.text = text


def forget_tracebacks(error: BaseException) -> None:
    """Drop the tracebacks of ``error`` and of the errors it chains to, once only its
    text is wanted: an error kept by the object that raised it (a connection's
    failure) otherwise makes a cycle with the frames of that object's methods,
    which only a full collection frees."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.__traceback__ = None
        pending += (item.__cause__, item.__context__)
