"""Everything wsprobe takes from ``websockets``: the only module that imports it.

The client side is the sans-I/O ``ClientProtocol`` (see :mod:`.core`); the server
side, used by the local test and demo server, is ``websockets``' asyncio server and
is imported only when a server starts (:func:`asyncio_serve`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import TYPE_CHECKING, Any

from ._standins import StandIn, lent


def _stand_ins() -> list[StandIn]:
    """What ``websockets`` imports that its client does not use, or needs one function of.

    - ``importlib.metadata`` (17 ms with the ``email`` package): ``websockets.version``
      computes a development version with it, which a release never does;
    - ``secrets`` (with ``random``, ``hmac`` and OpenSSL's ``_hashlib``): masks and keys
      are ``token_bytes``, which is ``os.urandom``;
    - ``hashlib``: the handshake's accept key is a SHA-1, which CPython's own ``_sha1``
      computes alike without loading OpenSSL;
    - ``random``: the reconnecting client's backoff, not used by wsprobe;
    - ``platform`` (9 regular expressions): ``uuid`` asks it the system's name once,
      at import, to choose how to find a MAC address that ``uuid4`` never needs.
    """
    hashing: dict[str, object] = {}
    # A Python built without _sha1 gets hashlib's own, imported on first use.
    with contextlib.suppress(ImportError):
        hashing["sha1"] = importlib.import_module("_sha1").sha1
    return [
        StandIn("importlib.metadata"),
        StandIn("secrets", token_bytes=_token_bytes),
        StandIn("hashlib", **hashing),
        StandIn("random"),
        StandIn("platform", system=lambda: os.uname().sysname),
    ]


def _token_bytes(nbytes: int | None = None) -> bytes:
    # secrets.token_bytes as it is (its default of 32 bytes, its keyword): a thread
    # importing `secrets` while websockets loads is handed the stand-in for good.
    return os.urandom(32 if nbytes is None else nbytes)


with lent(*_stand_ins()):
    from websockets.client import ClientProtocol
    from websockets.exceptions import (
        ConnectionClosed,
        InvalidHandshake,
        InvalidMessage,
        InvalidStatus,
        PayloadTooBig,
        ProtocolError,
    )
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    from websockets.frames import Close, Frame, Opcode
    from websockets.http11 import Response
    from websockets.protocol import State
    from websockets.typing import Subprotocol
    from websockets.uri import WebSocketURI

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection

__all__ = [
    "ClientPerMessageDeflateFactory",
    "ClientProtocol",
    "Close",
    "ConnectionClosed",
    "Frame",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidStatus",
    "Opcode",
    "PayloadTooBig",
    "ProtocolError",
    "Response",
    "Server",
    "ServerConnection",
    "State",
    "Subprotocol",
    "WebSocketURI",
    "asyncio_serve",
]


async def asyncio_serve(*args: Any, **kwargs: Any) -> Server:
    """``websockets.asyncio.server.serve``, imported on first use.

    The client path must not pay for asyncio and the server.
    """
    from websockets.asyncio.server import serve

    return await serve(*args, **kwargs)
