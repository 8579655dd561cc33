"""The ``http`` module's Python side: one request, under the same rules as a ``ws`` call.

``request(method, url, body, headers, options)`` as Monsta's page describes it: the
URL gets ``http://`` when it has no scheme; options ``verify`` (default true) and
``charset`` (default: the response's declared charset, else UTF-8); the result has
``status`` and ``body`` (text), plus ``headers`` (lower-case names; repeated
headers joined with ``", "``), which the page does not list but a login monitor
needs.

What it shares with ``ws`` calls, from the same code: the options ``timeout`` (one
deadline for connecting, sending and reading the whole body), ``cafile``,
``insecure`` (``verify = false`` is the same) and ``max_size`` (largest body, 16 MiB
by default); the TLS contexts (:func:`wsprobe.protocol.tls.tls_context`, so
``SSL_CERT_FILE``/``SSL_CERT_DIR`` count); ``user:password@`` in the URL becomes
Basic authentication and never appears in a message; a failure to connect is a
:class:`~wsprobe.errors.ConnectError` worded as for ``ws``
(``connect http://127.0.0.1:9/: connection refused``), and a failure after that is
an :class:`~wsprobe.errors.HttpError` (``http GET http://…/: timed out after 10s``).
Redirects are followed (at most 10); no cookies are kept and no proxy is used, so
nothing one request does reaches another.

The client is aiohttp, measured against httpx here (``bench/http_clients.py``: one
GET against a local aiohttp.web server, interleaved, 2000 requests each): 301 µs
for aiohttp against 1131 µs for httpx on a pooled session (3.8x), 0.9 ms against
26 ms with a new session per request (httpx builds a TLS context per client).
aiohttp costs more to import (206 ms against 84 ms with the interpreter), so it is
imported on the first request, never by ``import wsprobe``, and on a thread: a 5 ms
ticker on the loop saw a 142 ms gap when the import ran on the loop, 10 ms with it on
a thread (the import still takes the GIL in turns).
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import importlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import HttpError, InvalidOption
from ..options import Options, boolean, header_pairs, is_token, options_from_mapping

# The wording of connection failures is the transports' (one place), shared here.
from ..protocol._oserrors import connect_error
from ..protocol.tls import tls_context
from ..url import Target, parse_http_url

if TYPE_CHECKING:
    import ssl

    import aiohttp

__all__ = ["MAX_REDIRECTS", "OPTION_NAMES", "HttpClient", "HttpResponse"]

MAX_REDIRECTS = 10
#: The options a request takes: Monsta's two, then those it shares with ``ws`` calls.
OPTION_NAMES = ("verify", "charset", "timeout", "cafile", "insecure", "max_size")
_SHARED = ("timeout", "cafile", "insecure", "max_size")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# The client frames the body itself; a caller's own framing would contradict it.
_RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What a request returned: the status, the body as text, the headers."""

    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: str
    target: Target
    auth: tuple[str, str] | None
    timeout: float
    max_size: int
    charset: str | None
    tls: ssl.SSLContext | None


class HttpClient:
    """HTTP requests for the scripts of one run, on one pool of connections.

    ``base`` holds the run's defaults (``timeout``, ``cafile``, ``insecure``); a
    request's ``defaults`` replace them, and its options override both. Use from one
    event loop; :meth:`close` at the end.
    """

    def __init__(self, base: Options) -> None:
        self._base = base
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        body: str | bytes | None = None,
        headers: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        defaults: Options | None = None,
    ) -> HttpResponse:
        """Perform one request and read its whole body, all before the deadline.

        ``options`` override ``defaults`` (the calling script's options; the
        client's ``base`` when not given), so scripts with different defaults (the
        agent's monitors) share one pool.

        Raises :class:`~wsprobe.errors.InvalidURL` or
        :class:`~wsprobe.errors.InvalidOption` for bad arguments (before any I/O),
        :class:`~wsprobe.errors.ConnectError` when the connection cannot be opened,
        :class:`~wsprobe.errors.HttpError` when the request fails after that. Any
        status is a response, not an error.
        """
        request = self._prepare(method, url, options or {}, defaults or self._base)
        pairs = header_pairs(headers, reserved=_RESERVED_HEADERS, purpose="the HTTP client")
        if self._session is None:
            # Importing aiohttp stalled the event loop for 142 ms here: on a thread,
            # the other scripts of the run go on meanwhile.
            await asyncio.to_thread(importlib.import_module, "aiohttp")
        try:
            async with asyncio.timeout(request.timeout):
                return await self._perform(request, body, pairs)
        except TimeoutError:
            raise HttpError(
                request.method,
                request.target.display,
                "timeout",
                f"timed out after {request.timeout:g}s",
            ) from None

    async def close(self) -> None:
        """Close the pooled connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _prepare(
        self, method: str, url: str, options: Mapping[str, Any], defaults: Options
    ) -> _Request:
        if not isinstance(method, str) or not is_token(method):
            raise InvalidOption("method", f"not an HTTP method: {method!r}", kind="argument")
        for key in options:
            if key not in OPTION_NAMES:
                raise InvalidOption(str(key), "unknown option")
        shared = {key: options[key] for key in _SHARED if key in options}
        if "verify" in options and not boolean("verify", options["verify"]):
            shared["insecure"] = True
        settled = options_from_mapping(shared, defaults)
        charset = options.get("charset")
        if charset is not None:
            charset = _charset(charset)
        target, auth, clean = _parse(url)
        return _Request(
            method=method.upper(),
            url=clean,
            target=target,
            auth=auth,
            timeout=settled.timeout,
            max_size=settled.max_size,
            charset=charset,
            tls=tls_context(settled.cafile, settled.insecure) if target.secure else None,
        )

    async def _perform(
        self,
        request: _Request,
        body: str | bytes | None,
        headers: tuple[tuple[str, str], ...],
    ) -> HttpResponse:
        import aiohttp

        session = self._open_session()
        if request.auth is not None and not any(n.lower() == "authorization" for n, _ in headers):
            # As for ws calls: an Authorization header of the caller's replaces ours.
            credentials = base64.b64encode(":".join(request.auth).encode()).decode()
            headers = (("Authorization", f"Basic {credentials}"), *headers)
        try:
            async with session.request(
                request.method,
                request.url,
                data=body.encode() if isinstance(body, str) else body,
                headers=list(headers),
                ssl=request.tls if request.tls is not None else True,
                # aiohttp counts the response that would be the next redirect.
                max_redirects=MAX_REDIRECTS + 1,
            ) as response:
                content = await _read_body(response, request)
                charset = request.charset or _declared_charset(response.charset) or "utf-8"
                names = {name.lower() for name in response.headers}
                return HttpResponse(
                    status=response.status,
                    body=content.decode(charset, errors="replace"),
                    headers={
                        _text(name): _text(", ".join(response.headers.getall(name)))
                        for name in sorted(names)
                    },
                )
        except aiohttp.ClientError as exc:
            raise _mapped(request, exc) from exc
        except OSError as exc:
            raise connect_error(request.target, exc) from exc

    def _open_session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                # The deadline is ours (asyncio.timeout), not aiohttp's five minutes.
                timeout=aiohttp.ClientTimeout(total=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session


async def _read_body(response: aiohttp.ClientResponse, request: _Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > request.max_size:
            raise HttpError(
                request.method,
                request.target.display,
                "too-large",
                f"response larger than max_size of {request.max_size} bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _mapped(request: _Request, exc: Exception) -> Exception:
    """One place where aiohttp's exceptions become wsprobe's."""
    import aiohttp

    method, shown = request.method, request.target.display
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return connect_error(request.target, socket.gaierror())
    if isinstance(exc, aiohttp.ClientConnectorError):
        return connect_error(request.target, exc.os_error)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return HttpError(method, shown, "protocol", f"more than {MAX_REDIRECTS} redirects")
    if isinstance(
        exc, aiohttp.NonHttpUrlRedirectClientError | aiohttp.InvalidUrlRedirectClientError
    ):
        return HttpError(method, shown, "protocol", "redirected to a URL that is not http(s)")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return HttpError(method, shown, "network", "connection closed by the server")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return HttpError(method, shown, "protocol", "the response body was cut short or malformed")
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its text depends on which of aiohttp's two parsers is in use: not shown.
        return HttpError(method, shown, "protocol", "the server's reply is not valid HTTP")
    if isinstance(exc, aiohttp.ClientOSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return HttpError(method, shown, "network", reason[:1].lower() + reason[1:])
    return HttpError(method, shown, "network", str(exc) or type(exc).__name__)


def _parse(url: str) -> tuple[Target, tuple[str, str] | None, str]:
    """The target of an http(s) URL, its credentials, and the URL without them."""
    if not isinstance(url, str):
        raise InvalidOption("url", f"expected a string, got {type(url).__name__}", kind="argument")
    target = parse_http_url(url if _SCHEME.match(url) else f"http://{url}")
    auth = None
    if target.username is not None:
        auth = (target.username, target.password or "")
    return target, auth, target.display


def _charset(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidOption("charset", f"expected a string, got {type(value).__name__}")
    name = _declared_charset(value)
    if name is None:
        raise InvalidOption("charset", f"unknown charset {value!r}")
    return name


def _declared_charset(name: str | None) -> str | None:
    """The codec for a charset name, when Python knows it as a text encoding."""
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # bytes-to-bytes codecs (base64, zlib...) are not charsets.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _text(header: str) -> str:
    # aiohttp keeps a header's bytes that are not UTF-8 as lone surrogates, which no
    # script can hold: they become U+FFFD, as in a body.
    return header.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
