"""Parsing ``ws://`` and ``wss://`` URLs, and showing them without credentials."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidURL

__all__ = ["Target", "parse_http_url", "parse_url", "redact"]

_WS_PORTS = {"ws": 80, "wss": 443}
_HTTP_PORTS = {"http": 80, "https": 443}
_SECURE = frozenset({"wss", "https"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a WebSocket (or, for scripts' ``http``, an HTTP) URL points.

    ``host`` is lower-case, without IPv6 brackets, IDNA-encoded; ``ip`` is set when the
    host is a literal address (so no resolver is needed); ``display`` is the URL as
    error messages show it, with any ``user:password@`` removed.
    """

    secure: bool
    host: str
    port: int
    path: str
    query: str
    username: str | None
    password: str | None
    ip: str | None
    display: str


def redact(url: str) -> str:
    """Return ``url`` with any ``user:password@`` part removed (best effort)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:authority_end]
    if "@" not in authority:
        return url
    return f"{scheme}://{authority.rpartition('@')[2]}{rest[authority_end:]}"


@functools.lru_cache(maxsize=512)
def parse_url(url: str) -> Target:
    """Parse a WebSocket URL or raise :class:`~wsprobe.errors.InvalidURL`.

    Results are cached: a monitor calls the same few URLs over and over.
    """
    return _parse(url, _WS_PORTS, "ws or wss", fragments=False)


@functools.lru_cache(maxsize=512)
def parse_http_url(url: str) -> Target:
    """Parse an ``http://`` or ``https://`` URL (scripts' ``http`` module) or raise
    :class:`~wsprobe.errors.InvalidURL`, by the same rules as :func:`parse_url`,
    except that a ``#fragment`` is allowed and left out (it is never sent)."""
    return _parse(url, _HTTP_PORTS, "http or https", fragments=True)


def _parse(url: str, ports: dict[str, int], schemes: str, *, fragments: bool) -> Target:
    shown = redact(url)
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise InvalidURL(shown, "contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(shown, _port_or_syntax(str(exc))) from exc
    scheme = parts.scheme.lower()
    if scheme not in ports:
        raise InvalidURL(shown, f"scheme must be {schemes}")
    if not fragments and (parts.fragment or url.endswith("#")):
        raise InvalidURL(shown, "a WebSocket URL cannot have a #fragment")
    raw_host = parts.hostname
    if not raw_host:
        raise InvalidURL(shown, "missing host")
    try:
        host = raw_host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL(shown, f"invalid host name {raw_host}") from exc
    try:
        ip: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        ip = None
    netloc = parts.netloc.rpartition("@")[2]
    query = f"?{parts.query}" if parts.query else ""
    return Target(
        secure=scheme in _SECURE,
        host=host,
        port=port if port is not None else ports[scheme],
        path=_ascii(parts.path),
        query=_ascii(parts.query),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        ip=ip,
        display=f"{scheme}://{netloc}{parts.path or '/'}{query}",
    )


def _ascii(text: str) -> str:
    # The request line is ASCII: percent-encode other characters as UTF-8, as
    # browsers do with an IRI, and leave every ASCII character as the caller wrote it.
    if text.isascii():
        return text
    return "".join(c if c.isascii() else quote(c, safe="") for c in text)


def _port_or_syntax(reason: str) -> str:
    # urllib's messages ("Port out of range 0-65535", "Invalid IPv6 URL") are fine
    # facts in the wrong case; keep them, lower-cased, as the reason.
    return reason[:1].lower() + reason[1:]
