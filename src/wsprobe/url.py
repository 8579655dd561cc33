"""Parsing ``ws://`` and ``wss://`` URLs (and scripts' ``http://``/``https://`` ones),
and showing URLs and headers without credentials."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidURL
from .redaction import TOKEN, redact, redact_header

__all__ = ["TOKEN", "Target", "parse_http_url", "parse_url", "redact", "redact_header"]

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
    # InvalidURL redacts the URL it is given: every message below shows no credentials.
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise InvalidURL(url, "contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(url, _port_or_syntax(str(exc))) from exc
    scheme = parts.scheme.lower()
    if scheme not in ports:
        raise InvalidURL(url, f"scheme must be {schemes}")
    if not fragments and (parts.fragment or url.endswith("#")):
        raise InvalidURL(url, "a WebSocket URL cannot have a #fragment")
    raw_host = parts.hostname
    if not raw_host:
        raise InvalidURL(url, "missing host")
    try:
        host = _idna(raw_host)
    except UnicodeError as exc:
        raise InvalidURL(url, f"invalid host name {raw_host}") from exc
    try:
        ip: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        ip = None
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
        display=redact(f"{scheme}://{parts.netloc}{parts.path or '/'}{query}"),
    )


def _idna(host: str) -> str:
    # For an ASCII name IDNA only checks label lengths (RFC 3490 ToASCII, step 8):
    # done here, it spares every `wsprobe check` process loading the idna codec
    # with stringprep and unicodedata (~1.5 ms).
    if not host.isascii():
        return host.encode("idna").decode("ascii")
    if host and any(not 0 < len(label) < 64 for label in host.removesuffix(".").split(".")):
        raise UnicodeError("label empty or too long")
    return host


def _ascii(text: str) -> str:
    # The request line is ASCII: percent-encode other characters as UTF-8, as
    # browsers do with an IRI, and leave every ASCII character as the caller wrote it.
    if text.isascii():
        return text
    return "".join(c if c.isascii() else quote(c, safe="") for c in text)


def _port_or_syntax(reason: str) -> str:
    # urllib's messages name the text it read as a port, which may be a password
    # cut short ("user:pa/ss@host"): keep its facts, never that text.
    if reason.startswith("Port could not be cast"):
        return "port must be a number 0-65535"
    return reason[:1].lower() + reason[1:]
