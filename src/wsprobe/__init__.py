"""wsprobe: check WebSocket services from scripts.

``send_recv(url, data)`` opens a WebSocket, sends one text message, returns the first
text reply and closes, under one deadline. Every error is a :class:`wsprobe.Error`.

The calls are imported on first use, so that ``import wsprobe`` stays cheap for a
command line that a scheduler starts thousands of times.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BINARY_MESSAGE,
    NO_RESPONSE,
    BinaryMessage,
    ConnectError,
    Error,
    InvalidOption,
    InvalidURL,
    NoResponse,
    ProtocolViolation,
    ReplyTooLarge,
    SessionClosed,
)

if TYPE_CHECKING:
    from .async_session import AsyncSession
    from .client import (
        CallOptions,
        connect,
        connect_async,
        probe,
        probe_async,
        send_recv,
        send_recv_async,
    )
    from .models import Result, Timings
    from .session import Session

__version__ = "0.1.0"

__all__ = [
    "BINARY_MESSAGE",
    "NO_RESPONSE",
    "AsyncSession",
    "BinaryMessage",
    "CallOptions",
    "ConnectError",
    "Error",
    "InvalidOption",
    "InvalidURL",
    "NoResponse",
    "ProtocolViolation",
    "ReplyTooLarge",
    "Result",
    "Session",
    "SessionClosed",
    "Timings",
    "connect",
    "connect_async",
    "probe",
    "probe_async",
    "send_recv",
    "send_recv_async",
]

_LAZY = {
    "CallOptions": "client",
    "connect": "client",
    "connect_async": "client",
    "probe": "client",
    "probe_async": "client",
    "send_recv": "client",
    "send_recv_async": "client",
    "Result": "models",
    "Session": "session",
    "AsyncSession": "async_session",
    "Timings": "models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wsprobe' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
