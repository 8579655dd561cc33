"""The exit codes of ``wsprobe send`` (and ``run`` for usage errors): one table.

Stable and documented in the README. Every :class:`~wsprobe.errors.Error` maps to
exactly one code through :func:`exit_code`; an error the table does not name is a
bug of ours and gets ``internal`` (1), never a code that means something else.
"""

from __future__ import annotations

from ..errors import (
    BinaryMessage,
    ConnectError,
    ConnectErrorKind,
    Error,
    InvalidOption,
    InvalidURL,
    NoResponse,
    ProtocolViolation,
    ReplyTooLarge,
)

__all__ = ["EXIT_CODES", "describe", "exit_code"]

EXIT_CODES = {
    "ok": 0,
    "internal": 1,
    "usage": 2,
    "no-response": 3,
    "binary": 4,
    "connect": 5,
    "tls": 6,
    "http": 7,
    "timeout": 8,
    "protocol": 9,
    "too-large": 10,
}

_BY_CLASS: dict[type[Error], str] = {
    NoResponse: "no-response",
    BinaryMessage: "binary",
    InvalidURL: "usage",
    InvalidOption: "usage",
    ProtocolViolation: "protocol",
    ReplyTooLarge: "too-large",
}

_BY_CONNECT_KIND: dict[ConnectErrorKind, str] = {
    "refused": "connect",
    "dns": "connect",
    "network": "connect",
    "tls": "tls",
    "http": "http",
    "timeout": "timeout",
    "protocol": "protocol",
}


def exit_code(error: Error) -> int:
    """The exit code for ``error``; ``internal`` for any error the table does not name."""
    if isinstance(error, ConnectError):
        return EXIT_CODES[_BY_CONNECT_KIND[error.kind]]
    for cls in type(error).__mro__:
        if cls in _BY_CLASS:
            return EXIT_CODES[_BY_CLASS[cls]]
    return EXIT_CODES["internal"]


def describe(error: Error) -> str:
    """The error for people: ``no response`` says whether it was a close or a timeout."""
    return error.describe() if isinstance(error, NoResponse) else str(error)
