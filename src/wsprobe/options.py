"""Every value a caller hands to a call or a session, validated here and only here.

The same validation serves Python keyword arguments, the Lua options table and the
command line, so a wrong value gets the same message wherever it comes from.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidOption
from .url import TOKEN, redact_header

__all__ = [
    "CLOSE_WAIT",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_SECONDS",
    "OPTION_NAMES",
    "Options",
    "binary_data",
    "boolean",
    "close_frame",
    "default_timeout",
    "header_pairs",
    "is_token",
    "make_options",
    "options_from_mapping",
    "seconds",
    "text",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
#: The longest wait any option may ask for (a socket timeout beyond ~292 years
#: overflows the platform's clock; a day is more than any check needs).
MAX_SECONDS = 86400.0
#: After the reply, how long the caller may wait for the server's side of the close.
CLOSE_WAIT = 0.25

OPTION_NAMES = (
    "timeout",
    "headers",
    "subprotocols",
    "origin",
    "cafile",
    "insecure",
    "max_size",
    "compression",
)

# What an HTTP/1.1 header value may hold, sent as ISO-8859-1 (RFC 9110 field-value).
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# The close codes RFC 6455 lets an endpoint send, and the range for applications.
_CLOSE_CODES = (range(1000, 1004), range(1007, 1015), range(3000, 5000))
_MAX_CLOSE_REASON = 123
# Headers that carry the handshake itself: letting a caller set them would break it.
_RESERVED_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)


@dataclass(frozen=True, slots=True)
class Options:
    """Validated options of one call (see :func:`wsprobe.send_recv` for meanings)."""

    timeout: float = DEFAULT_TIMEOUT
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] | None = None
    origin: str | None = None
    cafile: str | None = None
    insecure: bool = False
    max_size: int = DEFAULT_MAX_SIZE
    compression: bool = True


def default_timeout() -> float:
    """The run-wide timeout: ``WSPROBE_TIMEOUT`` when set, else 10 seconds."""
    raw = os.environ.get("WSPROBE_TIMEOUT")
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT
    return seconds("WSPROBE_TIMEOUT", raw)


def make_options(
    *,
    timeout: Any = None,
    headers: Any = None,
    subprotocols: Any = None,
    origin: Any = None,
    cafile: Any = None,
    insecure: Any = False,
    max_size: Any = DEFAULT_MAX_SIZE,
    compression: Any = True,
) -> Options:
    """Check every option and return them as :class:`Options`.

    Raises :class:`~wsprobe.errors.InvalidOption` naming the first bad option.
    """
    options = Options(
        timeout=default_timeout() if timeout is None else seconds("timeout", timeout),
        headers=_headers(headers),
        subprotocols=_subprotocols(subprotocols),
        origin=None if origin is None else _header_value("origin", origin),
        cafile=None if cafile is None else _string("cafile", cafile),
        insecure=boolean("insecure", insecure),
        max_size=_max_size(max_size),
        compression=boolean("compression", compression),
    )
    if options.cafile is not None:
        from .protocol.tls import tls_context

        # A bad bundle is the caller's mistake: say so now, whatever the URL.
        tls_context(options.cafile, options.insecure)
    return options


def options_from_mapping(values: Mapping[str, Any], base: Options | None = None) -> Options:
    """Build options from a mapping (a Lua table), rejecting unknown keys by name.

    Keys absent from ``values`` keep their value from ``base``.
    """
    for key in values:
        if key not in OPTION_NAMES:
            raise InvalidOption(str(key), "unknown option")
    merged = {name: getattr(base or Options(), name) for name in OPTION_NAMES}
    merged.update(values)
    return make_options(**merged)


def seconds(name: str, value: Any) -> float:
    """Check a number of seconds (a number or its text); raise :class:`InvalidOption`."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidOption(name, f'"{value}" is not a number of seconds') from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOption(name, f"expected a number of seconds, got {_kind(value)}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidOption(name, f"must be a positive number of seconds, got {value}")
    if value > MAX_SECONDS:
        raise InvalidOption(name, f"must be at most {MAX_SECONDS:g} seconds, got {value:g}")
    return float(value)


def _max_size(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOption("max_size", f"expected a number of bytes, got {_kind(value)}")
    if value <= 0:
        raise InvalidOption("max_size", f"must be a positive number of bytes, got {value}")
    if value > sys.maxsize:  # the frame parser's sizes are C ssize_t
        raise InvalidOption("max_size", f"must be at most {sys.maxsize} bytes, got {value}")
    return value


def close_frame(code: Any, reason: Any) -> tuple[int, str]:
    """Check the code and reason of a close a caller asks for; raise :class:`InvalidOption`."""
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        raise InvalidOption("code", f"expected a close code, got {_kind(code)}", kind="argument")
    if not any(code in codes for codes in _CLOSE_CODES):
        raise InvalidOption(
            "code", f"must be 1000-1003, 1007-1014 or 3000-4999, got {code}", kind="argument"
        )
    if not isinstance(reason, str):
        raise InvalidOption("reason", f"expected a string, got {_kind(reason)}", kind="argument")
    if len(reason.encode(errors="surrogatepass")) > _MAX_CLOSE_REASON:
        raise InvalidOption(
            "reason", f"longer than {_MAX_CLOSE_REASON} bytes of UTF-8", kind="argument"
        )
    if not _utf8(reason):
        raise InvalidOption("reason", "not valid UTF-8 text", kind="argument")
    return code, reason


def text(name: str, value: Any) -> str:
    """Check a message's text: a ``str`` that UTF-8 can carry (no lone surrogates, which
    is what undecodable bytes of a command line or standard input become)."""
    if not isinstance(value, str):
        raise InvalidOption(name, f"expected a string, got {_kind(value)}", kind="argument")
    if not _utf8(value):
        raise InvalidOption(name, "not valid UTF-8 text", kind="argument")
    return value


def binary_data(name: str, value: Any) -> bytes:
    """Check a binary message: bytes-like (an int would make ``bytes(n)`` zeros)."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidOption(name, f"expected bytes, got {_kind(value)}", kind="argument")
    return bytes(value)


def _utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def boolean(name: str, value: Any) -> bool:
    """Check a flag (``binary``, ``insecure``, ...); raise :class:`InvalidOption`."""
    if not isinstance(value, bool):
        raise InvalidOption(name, f"expected true or false, got {_kind(value)}")
    return value


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidOption(name, f"expected a string, got {_kind(value)}")
    return value


def _header_value(name: str, value: Any) -> str:
    text = _string(name, value)
    if any(c in text for c in "\r\n\0"):
        raise InvalidOption(name, "must not contain line breaks")
    if not _FIELD_VALUE.fullmatch(text):
        raise InvalidOption(name, "must hold only printable characters of ISO-8859-1 (Latin-1)")
    return text


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    return header_pairs(value, reserved=_RESERVED_HEADERS, purpose="the WebSocket handshake")


def is_token(text: str) -> bool:
    """Whether ``text`` is an HTTP token (a header name, a method, a subprotocol)."""
    return TOKEN.fullmatch(text) is not None


def header_pairs(
    value: Any, *, reserved: frozenset[str], purpose: str
) -> tuple[tuple[str, str], ...]:
    """Check a ``headers`` option (a mapping or pairs) and return ``(name, value)`` pairs.

    Names must be HTTP tokens and not in ``reserved`` (lower-case names ``purpose``
    sets itself); values must not contain line breaks. Raises :class:`InvalidOption`.
    """
    if value is None:
        return ()
    pairs: Iterable[Any]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, list | tuple):
        pairs = value
    else:
        raise InvalidOption("headers", f"expected a table of name = value, got {_kind(value)}")
    result = []
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise InvalidOption("headers", "expected name = value pairs")
        name, text = pair
        if not isinstance(name, str):
            raise InvalidOption("headers", f"expected a header name, got {_kind(name)}")
        if not TOKEN.fullmatch(name):
            # Perhaps "Name value" with the colon forgotten: never show the value.
            raise InvalidOption("headers", f'invalid header name "{redact_header(name)}"')
        if name.lower() in reserved:
            raise InvalidOption("headers", f"{name} is set by {purpose}")
        result.append((name, _header_value(f"headers.{name}", text)))
    return tuple(result)


def _subprotocols(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidOption("subprotocols", f"expected a list of names, got {_kind(value)}")
    for item in value:
        if not isinstance(item, str) or not TOKEN.fullmatch(item):
            raise InvalidOption("subprotocols", f"invalid subprotocol name {item!r}")
    return tuple(value) or None


def _kind(value: Any) -> str:
    """Name a value's type in words a Lua or Python user both understand."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping | list | tuple):
        return "table"
    return type(value).__name__
