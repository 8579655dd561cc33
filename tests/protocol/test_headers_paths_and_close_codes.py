"""Inputs that used to let a foreign exception out (issue 9): each a wsprobe.Error now,
or a Lua string error, or simply working — through Python and through Lua."""

from __future__ import annotations

import json
from typing import Any

import pytest

import wsprobe
from tests.conftest import Run, Servers
from tests.support.calls import CALLS
from wsprobe.cli.exitcodes import EXIT_CODES, exit_code
from wsprobe.errors import ScriptCallError, SessionClosed

Call = Any


@pytest.mark.parametrize("call", CALLS)
def test_an_authorization_header_is_sent(call: Call, servers: Servers) -> None:
    reply, _ = call(servers.ws + "/inspect", headers={"Authorization": "Bearer s3cret"})
    assert json.loads(reply)["headers"]["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("call", CALLS)
def test_the_callers_authorization_replaces_the_urls(call: Call, servers: Servers) -> None:
    url = servers.ws.replace("ws://", "ws://user:pw@") + "/inspect"
    reply, _ = call(url, headers=[("Authorization", "Bearer mine")])
    assert json.loads(reply)["headers"]["authorization"] == "Bearer mine"


@pytest.mark.parametrize("call", CALLS)
def test_a_non_ascii_path_is_percent_encoded(call: Call, servers: Servers) -> None:
    assert call(servers.ws + "/ção?q=é", "x")[0] == "x"


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\x01b", "must hold only printable characters of ISO-8859-1 (Latin-1)"),
        ("a\x7fb", "must hold only printable characters of ISO-8859-1 (Latin-1)"),
        ("€uro", "must hold only printable characters of ISO-8859-1 (Latin-1)"),
        ("a\nb", "must not contain line breaks"),
    ],
)
def test_header_values_outside_http_are_refused(
    call: Call, servers: Servers, value: str, message: str
) -> None:
    assert call(servers.ws, headers={"X-Test": value})[0] == (
        f"error: invalid option headers.X-Test: {message}"
    )


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (1, "", "invalid argument code: must be 1000-1003, 1007-1014 or 3000-4999, got 1"),
        (1005, "", "invalid argument code: must be 1000-1003, 1007-1014 or 3000-4999, got 1005"),
        (5000, "", "invalid argument code: must be 1000-1003, 1007-1014 or 3000-4999, got 5000"),
        (1000.5, "", "invalid argument code: expected a close code, got number"),
        (True, "", "invalid argument code: expected a close code, got boolean"),
        (1000, "x" * 124, "invalid argument reason: longer than 123 bytes of UTF-8"),
        (1000, "é" * 62, "invalid argument reason: longer than 123 bytes of UTF-8"),
        (1000, 7, "invalid argument reason: expected a string, got number"),
    ],
)
def test_bad_close_codes_and_reasons(
    servers: Servers, code: Any, reason: Any, message: str
) -> None:
    with wsprobe.connect(servers.greeting) as session:
        with pytest.raises(wsprobe.InvalidOption) as info:
            session.close(code, reason)
        assert str(info.value) == message
        # The session is still open after a refused close.
        session.send("still")
        assert session.recv() == "welcome"
    with wsprobe.connect(servers.greeting) as session:
        session.close(4000, "é" * 61)


def test_lua_gets_string_errors_for_the_same_inputs(run: Run, servers: Servers) -> None:
    code, out, err = run.lua(
        f"""
local c = ws.connect("{servers.greeting}")
print(pcall(c.close, c, 1))
print(pcall(c.close, c, 1000, string.rep("x", 124)))
print(pcall(ws.send_recv, "{servers.ws}", "x", {{headers = {{["X-A"] = "a\\1b"}}}}))
print(ws.send_recv("{servers.ws}/ção", "non-ASCII path"))
local facts = json.decode(ws.send_recv("{servers.ws}/inspect", "x",
  {{headers = {{Authorization = "Bearer t"}}}}))
print(facts.headers.authorization)
"""
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "false\tinvalid argument code: must be 1000-1003, 1007-1014 or 3000-4999, got 1",
        "false\tinvalid argument reason: longer than 123 bytes of UTF-8",
        "false\tinvalid option headers.X-A: must hold only printable characters of "
        "ISO-8859-1 (Latin-1)",
        "non-ASCII path",
        "Bearer t",
    ]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (wsprobe.NoResponse(), EXIT_CODES["no-response"]),
        (wsprobe.BinaryMessage(), EXIT_CODES["binary"]),
        (wsprobe.InvalidURL("x", "y"), EXIT_CODES["usage"]),
        (wsprobe.InvalidOption("x", "y"), EXIT_CODES["usage"]),
        (wsprobe.ConnectError("u", "dns", "d"), EXIT_CODES["connect"]),
        (wsprobe.ConnectError("u", "tls", "d"), EXIT_CODES["tls"]),
        (wsprobe.ConnectError("u", "protocol", "d"), EXIT_CODES["protocol"]),
        (wsprobe.ProtocolViolation("u", "d"), EXIT_CODES["protocol"]),
        (wsprobe.ReplyTooLarge("u", 1), EXIT_CODES["too-large"]),
        # Errors the table does not name are ours: internal, never "too large".
        (SessionClosed("u"), EXIT_CODES["internal"]),
        (ScriptCallError("json.decode: x"), EXIT_CODES["internal"]),
        (wsprobe.Error("anything"), EXIT_CODES["internal"]),
    ],
)
def test_exit_codes_come_from_one_table(error: wsprobe.Error, code: int) -> None:
    assert exit_code(error) == code
