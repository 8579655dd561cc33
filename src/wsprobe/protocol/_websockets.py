"""Everything wsprobe takes from ``websockets``: the only module that imports it.

The client side is the sans-I/O ``ClientProtocol`` (see :mod:`.core`); the server
side, used by the local test and demo server, is ``websockets``' asyncio server and
is imported only when a server starts (:func:`asyncio_serve`).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

# websockets/version.py imports importlib.metadata (17 ms here, with the email
# package it drags in) only to compute a development version that a release never
# uses. A command a scheduler starts once per check must not pay that: lend it a
# placeholder while websockets loads, then take the placeholder back, so a later
# `import importlib.metadata` loads the real module.
_placeholder = None
if "importlib.metadata" not in sys.modules:
    _placeholder = sys.modules["importlib.metadata"] = types.ModuleType("importlib.metadata")
try:
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
finally:
    if _placeholder is not None and sys.modules.get("importlib.metadata") is _placeholder:
        del sys.modules["importlib.metadata"]

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
