"""The http module's Python side against a real aiohttp.web server (and raw sockets)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.conftest import HttpServers
from tests.support.wire import RawHandler, read_request
from wsprobe.errors import ConnectError, Error, HttpError, InvalidOption, InvalidURL
from wsprobe.options import make_options
from wsprobe.services.http import HttpClient, HttpResponse


def call(
    method: str,
    url: str,
    body: str | bytes | None = None,
    headers: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> HttpResponse:
    async def scenario() -> HttpResponse:
        client = HttpClient(make_options())
        try:
            return await client.request(method, url, body, headers, options)
        finally:
            await client.close()

    return asyncio.run(scenario())


def failure(
    method: str,
    url: str,
    options: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
) -> Error:
    with pytest.raises(Error) as caught:
        call(method, url, None, headers, options)
    return caught.value


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "options", "get"])
def test_methods_bodies_and_headers_reach_the_server(
    http_servers: HttpServers, method: str
) -> None:
    response = call(
        method, f"{http_servers.url}/echo?a=1", '{"nome": "teste"}', {"X-Probe": "yes"}
    )
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["method"] == method.upper()
    assert seen["query"] == "a=1"
    assert seen["body"] == '{"nome": "teste"}'
    assert seen["headers"]["x-probe"] == "yes"
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_head_has_a_status_and_no_body(http_servers: HttpServers) -> None:
    response = call("HEAD", f"{http_servers.url}/echo")
    assert (response.status, response.body) == (200, "")


@pytest.mark.parametrize("code", [201, 204, 301, 401, 404, 500, 503])
def test_any_status_is_a_response_not_an_error(http_servers: HttpServers, code: int) -> None:
    response = call("GET", f"{http_servers.url}/status/{code}")
    assert response.status == code
    assert response.body == ("" if code == 204 else f"status {code}")


def test_a_url_without_scheme_gets_http(http_servers: HttpServers) -> None:
    bare = http_servers.url.removeprefix("http://")
    assert json.loads(call("GET", f"{bare}/echo").body)["path"] == "/echo"


def test_credentials_in_the_url_become_basic_auth(http_servers: HttpServers) -> None:
    url = http_servers.url.replace("http://", "http://mon%40itor:s3cr%3At@")
    seen = json.loads(call("GET", f"{url}/echo").body)
    # base64("mon@itor:s3cr:t")
    assert seen["headers"]["authorization"] == "Basic bW9uQGl0b3I6czNjcjp0"


def test_headers_joined_and_no_cookie_kept(http_servers: HttpServers) -> None:
    async def scenario() -> tuple[HttpResponse, HttpResponse]:
        client = HttpClient(make_options())
        try:
            first = await client.request("GET", f"{http_servers.url}/cookie")
            second = await client.request("GET", f"{http_servers.url}/echo")
            return first, second
        finally:
            await client.close()

    first, second = asyncio.run(scenario())
    assert first.headers["x-multi"] == "one, two"
    assert first.headers["set-cookie"].startswith("session=s3cret")
    assert "cookie" not in json.loads(second.body)["headers"]


CHARSETS = [
    ("declared", None, "café ü"),
    ("undeclared", None, "caf\ufffd \ufffd"),
    ("undeclared", "iso-8859-1", "café ü"),
    ("undeclared", "latin1", "café ü"),
    ("declared", "utf-8", "caf\ufffd \ufffd"),
]


@pytest.mark.parametrize(("declared", "charset", "text"), CHARSETS)
def test_charset_decodes_the_body(
    http_servers: HttpServers, declared: str, charset: str | None, text: str
) -> None:
    options = {} if charset is None else {"charset": charset}
    assert call("GET", f"{http_servers.url}/charset/{declared}", options=options).body == text


def test_redirects_are_followed_up_to_ten(http_servers: HttpServers) -> None:
    response = call("GET", f"{http_servers.url}/redirect/10")
    assert (response.status, json.loads(response.body)["path"]) == (200, "/echo")


def test_many_requests_at_once_on_one_client(http_servers: HttpServers) -> None:
    async def scenario() -> list[int]:
        client = HttpClient(make_options())
        try:
            responses = await asyncio.gather(
                *(client.request("GET", f"{http_servers.url}/echo?n={n}") for n in range(100))
            )
        finally:
            await client.close()
        return [int(json.loads(r.body)["query"][2:]) for r in responses]

    assert asyncio.run(scenario()) == list(range(100))


# --- TLS: the same contexts as ws calls ---


def test_https_with_a_cafile_option(http_servers: HttpServers) -> None:
    options = {"cafile": str(http_servers.ca_file)}
    assert call("GET", f"{http_servers.tls_url}/status/200", options=options).status == 200


@pytest.mark.parametrize("options", [{"verify": False}, {"insecure": True}])
def test_https_without_verification_when_asked(
    http_servers: HttpServers, options: dict[str, Any]
) -> None:
    assert call("GET", f"{http_servers.tls_url}/status/200", options=options).status == 200


def test_https_honours_ssl_cert_file(
    http_servers: HttpServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(http_servers.ca_file))
    assert call("GET", f"{http_servers.tls_url}/status/200").status == 200


def test_an_unknown_ca_is_a_tls_error(http_servers: HttpServers) -> None:
    error = failure("GET", f"{http_servers.tls_url}/echo")
    assert isinstance(error, ConnectError)
    assert error.kind == "tls"
    assert str(error) == (
        f"connect {http_servers.tls_url}/echo: TLS certificate verify failed: "
        "unable to get local issuer certificate"
    )


def test_verify_true_overrides_nothing_of_the_run(http_servers: HttpServers) -> None:
    # verify = true is the default; it cannot turn off a cafile given for the run.
    async def scenario() -> int:
        client = HttpClient(make_options(cafile=str(http_servers.ca_file)))
        try:
            response = await client.request(
                "GET", f"{http_servers.tls_url}/status/200", options={"verify": True}
            )
        finally:
            await client.close()
        return response.status

    assert asyncio.run(scenario()) == 200


# --- failures: one line each, the URL without credentials ---


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_hides_the_credentials() -> None:
    port = _closed_port()
    error = failure("GET", f"http://user:secret@127.0.0.1:{port}/x?q=1")
    assert isinstance(error, ConnectError)
    assert (error.kind, str(error)) == (
        "refused",
        f"connect http://127.0.0.1:{port}/x?q=1: connection refused",
    )


def test_an_unknown_host_is_a_dns_error() -> None:
    error = failure("GET", "http://nohost.invalid/")
    assert isinstance(error, ConnectError)
    assert str(error) == "connect http://nohost.invalid/: could not resolve host nohost.invalid"


@pytest.mark.parametrize("path", ["/slow?s=5", "/trickle"])
def test_the_deadline_bounds_the_whole_request(http_servers: HttpServers, path: str) -> None:
    error = failure("GET", f"{http_servers.url}{path}", {"timeout": 0.3})
    assert isinstance(error, HttpError)
    assert str(error) == f"http GET {http_servers.url}{path}: timed out after 0.3s"


def test_a_body_over_max_size_is_refused(http_servers: HttpServers) -> None:
    assert (
        len(call("GET", f"{http_servers.url}/big?bytes=1000", options={"max_size": 1000}).body)
        == 1000
    )
    error = failure("GET", f"{http_servers.url}/big?bytes=1001", {"max_size": 1000})
    assert str(error) == (
        f"http GET {http_servers.url}/big?bytes=1001: response larger than max_size of 1000 bytes"
    )


REDIRECT_ERRORS = [
    ("/redirect/11", "more than 10 redirects"),
    ("/redirect-ftp", "redirected to a URL that is not http(s)"),
]


@pytest.mark.parametrize(("path", "detail"), REDIRECT_ERRORS)
def test_redirect_errors(http_servers: HttpServers, path: str, detail: str) -> None:
    error = failure("GET", f"{http_servers.url}{path}")
    assert str(error) == f"http GET {http_servers.url}{path}: {detail}"


def _drop(conn: socket.socket) -> None:
    read_request(conn)
    conn.close()


def _garbage(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")


def _cut_short(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
    conn.close()


RAW = [
    (_drop, "connection closed by the server"),
    (_garbage, "the server's reply is not valid HTTP"),
    (_cut_short, "the response body was cut short or malformed"),
]


@pytest.mark.parametrize(("handler", "detail"), RAW, ids=["drop", "garbage", "cut-short"])
def test_misbehaving_servers(
    raw_server: Callable[[RawHandler], str], handler: RawHandler, detail: str
) -> None:
    url = raw_server(handler).replace("ws://", "http://")
    error = failure("POST", url)
    assert isinstance(error, HttpError)
    assert str(error) == f"http POST {url}: {detail}"


BAD_ARGUMENTS: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None, str]] = [
    ("GET", "ftp://x/", None, None, 'invalid url "ftp://x/": scheme must be http or https'),
    ("GET", "http://", None, None, 'invalid url "http://": missing host'),
    (
        "GET",
        "http://a b/",
        None,
        None,
        'invalid url "http://a b/": contains whitespace or control characters',
    ),
    (
        "GET",
        "http://u:p@x:99999/",
        None,
        None,
        'invalid url "http://x:99999/": port out of range 0-65535',
    ),
    ("GE T", "http://x/", None, None, "invalid argument method: not an HTTP method: 'GE T'"),
    ("GET", "http://x/", {"colour": 1}, None, "invalid option colour: unknown option"),
    (
        "GET",
        "http://x/",
        {"verify": "no"},
        None,
        "invalid option verify: expected true or false, got string",
    ),
    (
        "GET",
        "http://x/",
        {"timeout": 0},
        None,
        "invalid option timeout: must be a positive number of seconds, got 0",
    ),
    (
        "GET",
        "http://x/",
        {"charset": "klingon"},
        None,
        "invalid option charset: unknown charset 'klingon'",
    ),
    (
        "GET",
        "http://x/",
        {"charset": "base64"},
        None,
        "invalid option charset: unknown charset 'base64'",
    ),
    (
        "GET",
        "http://x/",
        {"charset": 8},
        None,
        "invalid option charset: expected a string, got int",
    ),
    (
        "GET",
        "http://x/",
        {"max_size": 0},
        None,
        "invalid option max_size: must be a positive number of bytes, got 0",
    ),
    (
        "GET",
        "http://x/",
        None,
        {"Content-Length": "5"},
        "invalid option headers: Content-Length is set by the HTTP client",
    ),
    (
        "GET",
        "http://x/",
        None,
        {"X-A": "a\r\nb"},
        "invalid option headers.X-A: must not contain line breaks",
    ),
    (
        "GET",
        "http://x/",
        None,
        {"bad name": "a"},
        'invalid option headers: invalid header name "bad…"',
    ),
]


@pytest.mark.parametrize(("method", "url", "options", "headers", "message"), BAD_ARGUMENTS)
def test_bad_arguments_fail_before_any_io(
    method: str,
    url: str,
    options: dict[str, Any] | None,
    headers: dict[str, Any] | None,
    message: str,
) -> None:
    error = failure(method, url, options, headers)
    assert isinstance(error, InvalidURL | InvalidOption)
    assert str(error) == message


def test_a_fragment_is_not_sent_and_non_ascii_text_arrives(http_servers: HttpServers) -> None:
    seen = json.loads(call("GET", f"{http_servers.url}/echo?q=ação#section").body)
    # aiohttp.web shows the query decoded.
    assert (seen["path"], seen["query"]) == ("/echo", "q=ação")
