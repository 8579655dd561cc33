"""The public calls: :func:`send_recv`, :func:`probe` and their asyncio twins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict, Unpack

from .errors import InvalidURL
from .models import Result
from .options import Options, make_options, text
from .protocol import sync
from .url import Target, parse_url

if TYPE_CHECKING:
    from .async_session import Connecting
    from .session import Session

__all__ = [
    "CallOptions",
    "connect",
    "connect_async",
    "probe",
    "probe_async",
    "send_recv",
    "send_recv_async",
]


class CallOptions(TypedDict, total=False):
    """The keyword-only options every call takes; see :func:`send_recv`."""

    timeout: float | None
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None
    subprotocols: Sequence[str] | None
    origin: str | None
    cafile: str | None
    insecure: bool
    max_size: int
    compression: bool


def send_recv(url: str, data: str, **options: Unpack[CallOptions]) -> str:
    """Open a WebSocket to ``url``, send ``data`` as one text message, return the first reply.

    The first *data* message decides: text is returned; binary raises
    :class:`~wsprobe.BinaryMessage` (``ws binary messages not supported``). Pings are
    answered, pongs ignored, fragments reassembled. A connection that ends before any
    data message, or no data message before the deadline, raises
    :class:`~wsprobe.NoResponse` (``no response from web socket``), carrying the
    server's close code and reason when it sent one. Failing to connect raises
    :class:`~wsprobe.ConnectError`; a server breaking the protocol raises
    :class:`~wsprobe.ProtocolViolation`; a reply over ``max_size`` bytes raises
    :class:`~wsprobe.ReplyTooLarge`; bad arguments raise :class:`~wsprobe.InvalidURL`
    or :class:`~wsprobe.InvalidOption`. Every error is a :class:`~wsprobe.Error`.

    Args:
        url: ``ws://`` or ``wss://`` URL; ``user:password@`` becomes Basic auth and
            never appears in an error.
        data: the text message to send.

    Keyword options:
        timeout: seconds for the whole call: resolve, connect, TLS, upgrade, send
            and reply. Defaults to ``WSPROBE_TIMEOUT`` or 10. Past it the socket is
            aborted; after the reply the close handshake adds at most 0.25 s.
        headers: extra upgrade request headers, a mapping or ``(name, value)`` pairs.
        subprotocols: subprotocols to offer, in order of preference.
        origin: the ``Origin`` header.
        cafile: PEM bundle to trust for ``wss://`` instead of the system store
            (which honours ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``).
        insecure: skip certificate and host name verification.
        max_size: largest reply accepted, in bytes (default 16 MiB).
        compression: offer permessage-deflate (default true).
    """
    return probe_with(url, data, make_options(**options)).reply


def probe(url: str, data: str, **options: Unpack[CallOptions]) -> Result:
    """Like :func:`send_recv`, with the facts of the call: timings, peer, certificate."""
    return probe_with(url, data, make_options(**options))


async def send_recv_async(url: str, data: str, **options: Unpack[CallOptions]) -> str:
    """The asyncio twin of :func:`send_recv`: same arguments, results and errors."""
    return (await probe_with_async(url, data, make_options(**options))).reply


async def probe_async(url: str, data: str, **options: Unpack[CallOptions]) -> Result:
    """The asyncio twin of :func:`probe`."""
    return await probe_with_async(url, data, make_options(**options))


def connect(url: str, *, binary: bool = False, **options: Unpack[CallOptions]) -> Session:
    """Open a WebSocket session for several exchanges; a context manager.

    Takes the options of :func:`send_recv` (``timeout`` bounds the opening and then
    each operation). ``send(text)``, ``send_binary(data)``, ``recv(timeout=None)``
    (text; binary raises ``ws binary messages not supported`` unless ``binary=True``,
    then it returns ``bytes``), ``ping()`` (the round trip in seconds),
    ``close(code=1000, reason="")``; ``subprotocol``, ``close_code``, ``close_reason``.
    Errors are those of :func:`send_recv`; a timed-out ``recv`` leaves it usable.
    """
    from .session import open_session

    return open_session(_url(url), make_options(**options), binary=binary)


def connect_async(url: str, *, binary: bool = False, **options: Unpack[CallOptions]) -> Connecting:
    """The asyncio twin of :func:`connect`: ``await`` it, or use ``async with``."""
    from .async_session import Connecting

    return Connecting(_url(url), make_options(**options), binary)


def probe_with(url: str, data: str, options: Options) -> Result:
    """:func:`probe` with options already validated (the CLI and Lua build them once)."""
    return sync.exchange(_target(url), options, _text(data))


async def probe_with_async(url: str, data: str, options: Options) -> Result:
    """:func:`probe_async` with options already validated."""
    # Imported here: asyncio alone costs ~30 ms, which `wsprobe send` never needs.
    from .protocol import asyncio

    return await asyncio.exchange(_target(url), options, _text(data))


def _target(url: object) -> Target:
    return parse_url(_url(url))


def _url(url: object) -> str:
    if not isinstance(url, str):
        raise InvalidURL(repr(url), "expected a string")
    return url


def _text(data: object) -> str:
    return text("data", data)
