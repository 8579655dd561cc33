"""Properties of the library's entry points, fuzzed with Hypothesis.

Whatever the URL, data, options, close code and reason, ``send_recv``, ``probe``,
``connect`` and their asyncio twins either return or raise a :class:`wsprobe.Error`
whose message is one line and shows no password and no credential header value.
The calls go to the suite's real servers on 127.0.0.1 (or fail before any socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import wsprobe
from tests.conftest import Servers
from tests.support.fuzz import FUZZ, call_options, close_codes, close_reasons, leaks, secrets, urls
from tests.support.net import ports
from wsprobe.options import make_options
from wsprobe.url import parse_url


def fixed_timeout(options: dict[str, Any]) -> dict[str, Any]:
    # A valid but long timeout against a path that never answers would only wait:
    # the validation is fuzzed, the wait is bounded.
    timeout = options.get("timeout")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 2:
        options["timeout"] = 2
    return options


def check_error(exc: BaseException, secret: str) -> str:
    assert isinstance(exc, wsprobe.Error), repr(exc)
    message = str(exc)
    assert "\n" not in message, message
    assert "\r" not in message, message
    assert not leaks(secret, message), message
    return message


@FUZZ
@given(url=st.text(max_size=40), secret=secrets, data=st.data())
def test_parse_url_is_total(url: str, secret: str, data: st.DataObject) -> None:
    """Any text: a Target, or InvalidURL naming the URL without its password."""
    with_secret = data.draw(
        st.sampled_from(
            [
                f"ws://u:{secret}@{url}",
                f"ws:/u:{secret}@h{url}",
                f"//u:{secret}@h/{url}",
                f"ws://u:{secret}{url}@127.0.0.1/",
                f"{url}://u:{secret}@h/",
            ]
        )
    )
    try:
        target = parse_url(with_secret)
    except BaseException as exc:
        check_error(exc, secret)
    else:
        assert not leaks(secret, target.display), target.display


@FUZZ
@given(secret=secrets, data=st.data())
def test_send_recv_and_probe(servers: Servers, secret: str, data: st.DataObject) -> None:
    url = data.draw(urls(ports(servers), data.draw(st.one_of(st.none(), st.just(secret)))))
    options = data.draw(call_options(secret, str(servers.ca_file)))
    text = data.draw(st.one_of(st.text(max_size=20), st.sampled_from(["\ud800x", ""])))
    call = data.draw(st.sampled_from([wsprobe.send_recv, wsprobe.probe]))
    try:
        outcome = call(url, text, **options)
    except BaseException as exc:
        check_error(exc, secret)
        return
    if isinstance(outcome, wsprobe.Result):
        assert not leaks(secret, repr(outcome.facts()))
    else:
        assert isinstance(outcome, str)


@settings(FUZZ, max_examples=200)
@given(secret=secrets, data=st.data())
def test_accepted_options_work(servers: Servers, secret: str, data: st.DataObject) -> None:
    """Options that validation accepts make a working call: none fails deeper down."""
    options = data.draw(call_options(secret, str(servers.ca_file)))
    try:
        accepted = make_options(**options)
    except wsprobe.InvalidOption as exc:
        check_error(exc, secret)
        return
    timeout = options.get("timeout")
    assume(timeout is None or isinstance(timeout, str) or timeout >= 1)
    for call in (wsprobe.send_recv, wsprobe.send_recv_async):
        try:
            reply = call(servers.ws + "/", "ping", **options)
            if not isinstance(reply, str):
                reply = asyncio.run(reply)
        except wsprobe.ConnectError as exc:
            # A Host header of the caller's may be refused by the server: still one line.
            assert exc.kind == "http", exc  # noqa: PT017
            check_error(exc, secret)
        except wsprobe.ReplyTooLarge as exc:
            assert accepted.max_size < len("ping"), exc  # noqa: PT017
        else:
            assert reply == "ping"


@FUZZ
@given(secret=secrets, data=st.data())
def test_async_twins(servers: Servers, secret: str, data: st.DataObject) -> None:
    url = data.draw(urls(ports(servers), secret))
    options = data.draw(call_options(secret, str(servers.ca_file)))
    call = data.draw(st.sampled_from([wsprobe.send_recv_async, wsprobe.probe_async]))

    async def run() -> object:
        return await call(url, "ping", **options)

    try:
        outcome = asyncio.run(run())
    except BaseException as exc:
        check_error(exc, secret)
        return
    assert isinstance(outcome, str | wsprobe.Result)


@FUZZ
@given(secret=secrets, data=st.data())
def test_sessions(servers: Servers, secret: str, data: st.DataObject) -> None:
    """connect(): any options, then send, recv, ping and close with any code and reason."""
    url = data.draw(urls(ports(servers)[:1], secret))
    options = fixed_timeout(data.draw(call_options(secret, str(servers.ca_file))))
    options.setdefault("timeout", 1)
    binary: Any = data.draw(st.one_of(st.booleans(), st.none(), st.integers()))
    steps = data.draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("send"), st.one_of(st.text(max_size=8), st.just("\udcff"))),
                st.tuples(st.just("send_binary"), st.binary(max_size=8)),
                st.tuples(st.just("recv"), st.sampled_from([None, 0.05, 0, -1, float("nan")])),
                st.tuples(st.just("ping"), st.sampled_from([None, 0.5, 1e10])),
                st.tuples(st.just("close"), st.tuples(close_codes, close_reasons)),
            ),
            max_size=5,
        )
    )
    try:
        session = wsprobe.connect(url, binary=binary, **options)
    except BaseException as exc:
        check_error(exc, secret)
        return
    with session:
        for name, argument in steps:
            method = getattr(session, name)
            try:
                if name == "close":
                    method(*argument)
                else:
                    method(argument)
            except BaseException as exc:
                check_error(exc, secret)
        assert session.close_code is None or isinstance(session.close_code, int)


@FUZZ
@given(secret=secrets, data=st.data())
def test_async_sessions(servers: Servers, secret: str, data: st.DataObject) -> None:
    url = data.draw(urls(ports(servers)[:1], secret))
    options = fixed_timeout(data.draw(call_options(secret, str(servers.ca_file))))
    code: Any = data.draw(close_codes)
    reason: Any = data.draw(close_reasons)

    async def run() -> None:
        async with wsprobe.connect_async(url, **options) as session:
            session.send("hi")
            await session.recv(timeout=1)
            await session.close(code, reason)

    try:
        asyncio.run(run())
    except BaseException as exc:
        check_error(exc, secret)


@FUZZ
@given(host=st.text(st.characters(max_codepoint=127), max_size=70))
def test_ascii_hosts_skip_the_idna_codec_alike(host: str) -> None:
    """The shortcut for ASCII names accepts and refuses exactly what IDNA does."""
    from wsprobe.url import _idna

    try:
        expected: str | None = host.encode("idna").decode("ascii")
    except UnicodeError:
        expected = None
    try:
        shortcut: str | None = _idna(host)
    except UnicodeError:
        shortcut = None
    assert shortcut == expected
