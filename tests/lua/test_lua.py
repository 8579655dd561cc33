"""Lua scripts through `wsprobe run`: the contract's names, the sandbox, the limits."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Run, Servers
from tests.support.lua import run_as_one_run, run_lua

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# --- json, now, print: each snippet prints exactly the expected text ---

VALUES = [
    ("json.encode(nil)", "null"),
    ("json.encode(true) .. json.encode(false)", "truefalse"),
    ("json.encode(42)", "42"),
    ("json.encode(-7)", "-7"),
    ("json.encode(45.6)", "45.6"),
    ("json.encode(1.0)", "1.0"),
    ("json.encode(2^53)", "9007199254740992.0"),
    ('json.encode("a\\"b\\\\c\\n\\t\\1")', '"a\\"b\\\\c\\n\\t\\u0001"'),
    ('json.encode("Olá ✓")', '"Olá ✓"'),
    ("json.encode({1, 2, 3})", "[1,2,3]"),
    ("json.encode({})", "[]"),
    ("json.encode({b = 1, a = {true, false}, c = 'x'})", '{"a":[true,false],"b":1,"c":"x"}'),
    ("json.encode({1, json.null, 3})", "[1,null,3]"),
    ("json.encode(json.null)", "null"),
    ("json.encode({a = {b = {c = {}}}})", '{"a":{"b":{"c":[]}}}'),
    ("tostring(json.decode('null'))", "nil"),
    ("json.decode('[1, null, 3]')[2] == json.null", "true"),
    ("#json.decode('[1, null, 3]')", "3"),
    ("math.type(json.decode('7'))", "integer"),
    ("math.type(json.decode('7.0'))", "float"),
    ("json.decode('45.6')", "45.6"),
    ('json.decode(\'{"a": {"b": [10, 20]}}\').a.b[2]', "20"),
    ("json.decode('\"\\\\u00e9\\\\n\"')", "é\n"),
    ("json.decode('true') and json.decode('false') == false", "true"),
    ("json.decode(json.encode({x = 'ü', n = {1, 2}})).x", "ü"),
    ("tostring(json.null)", "null"),
    ("math.type(now())", "float"),
    ("now() > 1.7e9 and now() < 4e9", "true"),
    ("type(os.time()) .. type(os.clock()) .. type(os.date('%Y'))", "numbernumberstring"),
    ("select('#', print)", "1"),
]


@pytest.mark.parametrize(("expression", "expected"), VALUES, ids=[v[0] for v in VALUES])
def test_values(expression: str, expected: str) -> None:
    ran = run_lua(f"print({expression})")
    assert (ran.outcome.ok, ran.printed, ran.logged) == (True, expected + "\n", [])


JSON_ERRORS = [
    (
        "local t = {}; t.self = t; return json.encode(t)",
        "json.encode: circular reference",
    ),
    ("return json.encode({1, 2, x = 3})", "json.encode: table keys must be all strings or 1..n"),
    ("return json.encode({[1] = 1, [3] = 3})", "json.encode: table keys must be all strings"),
    ("return json.encode({[true] = 1})", "json.encode: table keys must be all strings or 1..n"),
    ("return json.encode(print)", "json.encode: cannot encode a function"),
    ("return json.encode(0/0)", "json.encode: cannot encode NaN or infinity"),
    ("return json.encode({math.huge})", "json.encode: cannot encode NaN or infinity"),
    ("return json.encode('\\xff')", "json.encode: string is not valid UTF-8"),
    (
        "return json.decode('{\"a\": }')",
        "json.decode: invalid JSON: expecting value at line 1 column 7",
    ),
    (
        "return json.decode('[1, 2')",
        "json.decode: invalid JSON: expecting ',' delimiter at line 1",
    ),
    ("return json.decode('')", "json.decode: invalid JSON: expecting value at line 1 column 1"),
    ("return json.decode('NaN')", "json.decode: NaN is not valid JSON"),
    ("return json.decode('1e400')", "json.decode: number out of range: 1e400"),
    ("return json.decode('123456789012345678901')", "json.decode: number out of range"),
    (
        "return json.decode(string.rep('[', 201) .. string.rep(']', 201))",
        "json.decode: nesting deeper than 200 levels",
    ),
    (
        "return json.decode(string.rep('[', 100000))",
        "json.decode: nesting deeper than 200 levels",
    ),
    ("return json.decode('\"\\xff\"')", "json.decode: text is not valid UTF-8"),
    ("return json.decode({})", "bad argument #1 to 'json.decode' (string expected, got table)"),
    (
        "local t = {}; local c = t\nfor i = 1, 250 do c[1] = {}; c = c[1] end\n"
        "return json.encode(t)",
        "json.encode: nesting deeper than 200 levels",
    ),
]


@pytest.mark.parametrize(("source", "message"), JSON_ERRORS, ids=[e[1] for e in JSON_ERRORS])
def test_json_errors_are_plain_strings(source: str, message: str) -> None:
    wrapped = f"local ok, err = pcall(function() {source} end)\nprint(ok, type(err), err)"
    ran = run_lua(wrapped)
    assert ran.outcome.ok
    ok, kind, text = ran.printed.rstrip("\n").split("\t", 2)
    assert (ok, kind) == ("false", "string")
    assert text.startswith(message)


# Lua names a library function in its argument errors by where the state's loaded
# libraries hold it: what the sandbox frees of the state must leave those names.
LIBRARY_ERRORS = [
    ("string.rep", "bad argument #1 to 'string.rep' (string expected, got no value)"),
    ("tostring", "bad argument #1 to 'tostring' (value expected)"),
    ("next, 1", "bad argument #1 to 'next' (table expected, got number)"),
    ("coroutine.close, 1", "bad argument #1 to 'coroutine.close' (thread expected, got number)"),
    ("math.floor, 'a'", "bad argument #1 to 'math.floor' (number expected, got string)"),
    ("utf8.char, 'a'", "bad argument #1 to 'utf8.char' (number expected, got string)"),
    ("table.concat, 1", "bad argument #1 to 'table.concat' (table expected, got number)"),
    ("setmetatable, 1", "bad argument #1 to '?' (table expected, got number)"),
    ("os.time, 1", "bad argument #1 to '?' (table expected, got number)"),
]


@pytest.mark.parametrize(("call", "message"), LIBRARY_ERRORS, ids=[e[0] for e in LIBRARY_ERRORS])
def test_a_library_function_called_through_pcall_is_named_in_its_error(
    call: str, message: str
) -> None:
    assert run_lua(f"return select(2, pcall({call}))").outcome.result == message


# The globals few scripts call are built on first use, called through stand-ins: what
# a script sees of them (where an error is reported, with or without a line, through
# pcall, a tail call or a coroutine; their values) is what it would see of them built
# with the state.
RARE_GLOBALS = [
    (
        'local j = json\nrequire("socket")',
        False,
        None,
        "check.lua:2: module 'socket' not found (only ws, json, log, store, cache, http, time, uuid)",
    ),
    (
        'return select(2, pcall(require, "socket"))',
        True,
        "module 'socket' not found (only ws, json, log, store, cache, http, time, uuid)",
        None,
    ),
    (
        "local j = json\nreturn require(42)",
        False,
        None,
        "check.lua: module not found (only ws, json, log, store, cache, http, time, uuid)",
    ),
    (
        "local j = json\n\nsetfenv(print, {})",
        False,
        None,
        'check.lua:3: setfenv is not available: Lua 5.4 has no function environments; give load(text, name, "t", env) the environment, or declare a local _ENV',
    ),
    (
        "getfenv()",
        False,
        None,
        'check.lua:1: getfenv is not available: Lua 5.4 has no function environments; give load(text, name, "t", env) the environment, or declare a local _ENV',
    ),
    (
        "local j = json\nsetmetatable({}, {__gc = print})",
        False,
        None,
        "check.lua:2: setmetatable: __gc metamethods are not supported",
    ),
    (
        "return select(2, pcall(setmetatable, {}, {__gc = print}))",
        True,
        "setmetatable: __gc metamethods are not supported",
        None,
    ),
    (
        "local j = json\n\nwith_timeout(-1, print)",
        False,
        None,
        "check.lua:3: bad argument #1 to 'with_timeout' (non-negative number expected, got -1)",
    ),
    (
        "local j = json\n\nreturn with_timeout(-1, print)",
        False,
        None,
        "check.lua: bad argument #1 to 'with_timeout' (non-negative number expected, got -1)",
    ),
    (
        'local j = json\nlocal ok, e = pcall(with_timeout, 10, "f") return e',
        True,
        "bad argument #2 to 'with_timeout' (function expected, got string)",
        None,
    ),
    ("return with_timeout(100, function(a, b) return a, b end, 1, 2)", True, 1, None),
    (
        'local j = json\n\ndiff("a", 1)',
        False,
        None,
        "check.lua:3: bad argument #1 to 'diff' (number expected, got string)",
    ),
    ("return diff(5, 2)", True, 3, None),
    ("local j = json\ndiff(1, 2)", True, None, None),
    (
        "local j = json\n\nsignal(nil)",
        False,
        None,
        "check.lua:3: bad argument #1 to 'signal' (string expected, got nil)",
    ),
    ('return tostring(select(2, pcall(signal, "X")))', True, "signal X", None),
    (
        "return loadstring({})",
        False,
        None,
        "check.lua: bad argument #1 to 'loadstring' (string expected, got table)",
    ),
    ('return loadstring("return 1 + 1")()', True, 2, None),
    ('return select(2, load("x x"))', True, "[string \"x x\"]:1: syntax error near 'x'", None),
    (
        "return select(2, pcall(load))",
        True,
        "bad argument #1 to '?' (function expected, got nil)",
        None,
    ),
    ('return load("return y", "n", "t", {y = 3})()', True, 3, None),
    ('y = 4 return load("return y")()', True, 4, None),
    (
        "return type(with_timeout) .. type(signal) .. type(require) .. type(setfenv)",
        True,
        "functionfunctionfunctionfunction",
        None,
    ),
    (
        'local f = coroutine.wrap(function() require("nope") end)\nf()',
        False,
        None,
        "check.lua:1: module 'nope' not found (only ws, json, log, store, cache, http, time, uuid)",
    ),
    (
        'local ws2 = ws\nlocal ok, e = pcall(function() local x = require("nope") end) return e',
        True,
        "check.lua:2: module 'nope' not found (only ws, json, log, store, cache, http, time, uuid)",
        None,
    ),
    ("return setmetatable({}, {__index = function() return 7 end}).x", True, 7, None),
    ('return select("#", with_timeout(10, function() return nil, nil end))', True, 2, None),
    (
        "local t = {} for i = 1, 700000 do t[i] = i end\n"
        "return select('#', with_timeout(1000, function() return table.unpack(t, 1, 700000) end))",
        True,
        700000,
        None,
    ),
    (
        "local g = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\nreturn g(1) + g(5)",
        True,
        12,
        None,
    ),
    (
        'local j = json\nlocal g = coroutine.wrap(function() error("boom", 0) end)\n\ng()',
        False,
        None,
        "check.lua:4: boom",
    ),
    (
        "return select(2, pcall(coroutine.wrap, 1))",
        True,
        "bad argument #1 to '?' (function expected, got number)",
        None,
    ),
    (
        "local j = json\n\ncoroutine.wrap(1)",
        False,
        None,
        "check.lua:3: bad argument #1 to '?' (function expected, got number)",
    ),
    (
        "local g = coroutine.wrap(function() end) g() return select(2, pcall(g))",
        True,
        "cannot resume dead coroutine",
        None,
    ),
    ("return type(coroutine.wrap)", True, "function", None),
]


@pytest.mark.parametrize(("source", "ok", "result", "error"), RARE_GLOBALS)
def test_the_globals_built_on_first_use_behave_as_if_built_with_the_state(
    source: str, ok: bool, result: object, error: str | None
) -> None:
    outcome = run_lua(source).outcome
    assert (outcome.ok, outcome.result, outcome.error) == (ok, result, error)


# A script that caught a memory error leaves its heap full of garbage, up to its limit:
# what is built on first use (the rare globals, a library's extensions) then collects
# it, as any of Lua's allocations would, rather than fail for want of room.
FULL_OF_GARBAGE = (
    "pcall(function() local t = {} for i = 1, 1e9 do t[i] = i .. 'xxxxxxxxxxxxxxxx' end end)\n"
)


@pytest.mark.parametrize(
    ("source", "result", "signal"),
    [
        ('signal("Overflow")', None, "Overflow"),
        ("return diff(5, 3)", 2, None),
        ("local ok, e = pcall(diff, 5, 3)\nreturn e + diff(5, 3)", 4, None),
        ('return require("json") == json', True, None),
        ("return type(setmetatable({}, {}))", "table", None),
        ("return coroutine.wrap(function() return 4 end)()", 4, None),
        ('return load("return 5")()', 5, None),
        ("return with_timeout(1000, function() return 7 end)", 7, None),
        ('return ("a,b"):split(",")[2]', "b", None),
    ],
)
def test_what_is_built_on_first_use_is_built_after_a_caught_memory_error(
    source: str, result: object, signal: str | None
) -> None:
    outcome = run_lua(FULL_OF_GARBAGE + source, memory_limit_mib=8).outcome
    assert (outcome.ok, outcome.result, outcome.error, outcome.signal) == (
        True,
        result,
        None,
        signal,
    )


# The key of a signal's name can be read off a caught signal: what a script raises with
# it is a signal only when signal() could have made it.
@pytest.mark.parametrize(
    ("name", "signal", "error"),
    [
        ('"Forged"', "Forged", None),
        ("{}", None, "check.lua:2: (error object is a table value)"),
        ("42", None, "check.lua:2: (error object is a table value)"),
        ("print", None, "check.lua:2: (error object is a table value)"),
        ("coroutine.running()", None, "check.lua:2: (error object is a table value)"),
    ],
)
def test_a_signal_raised_by_hand_has_a_string_for_a_name(
    name: str, signal: str | None, error: str | None
) -> None:
    source = f'local ok, e = pcall(signal, "x")\nerror({{[next(e)] = {name}}})'
    outcome = run_lua(source).outcome
    assert (outcome.ok, outcome.signal, outcome.error) == (error is None, signal, error)


def test_deep_but_allowed_json_decodes() -> None:
    ran = run_lua("print(#json.decode(string.rep('[', 200) .. string.rep(']', 200)))")
    assert (ran.outcome.ok, ran.printed) == (True, "1\n")


def test_print_has_lua_semantics() -> None:
    source = (
        "print('a', 1, 2.5, nil, true, setmetatable({}, {__tostring = function() return 'T' end}))"
        "\nprint()\nprint('x\\ny')"
    )
    ran = run_lua(source)
    assert (ran.outcome.ok, ran.printed) == (True, "a\t1\t2.5\tnil\ttrue\tT\n\nx\ny\n")


def test_log_goes_to_stderr_with_timestamp_level_and_name(run: Run) -> None:
    code, out, err = run.lua("log.info('hello', 42, nil)\nlog.debug('hidden')\nlog.error('bad')")
    assert (code, out) == (0, "")
    lines = err.splitlines()
    assert len(lines) == 2
    pattern = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|ERROR) check\.lua: (.*)$"
    assert [re.match(pattern, line).group(2) for line in lines] == ["hello 42 nil", "bad"]  # type: ignore[union-attr]


def test_log_level_filters(run: Run) -> None:
    _, _, err = run.lua("log.debug('d')\nlog.warn('w')", "--log-level", "debug")
    assert [line.split(" ", 2)[2] for line in err.splitlines()] == ["check.lua: d", "check.lua: w"]
    _, _, err = run.lua("log.info('i')\nlog.warn('w')", "--log-level", "error")
    assert err == ""


def test_now_has_sub_millisecond_resolution() -> None:
    ran = run_lua(
        "local a = now(); local b = a; while b == a do b = now() end; print(b - a < 0.001)"
    )
    assert (ran.outcome.ok, ran.printed) == (True, "true\n")


# --- ws from Lua ---


def test_send_recv_echo(run: Run, servers: Servers) -> None:
    code, out, _ = run.lua(f'print(ws.send_recv("{servers.ws}/", "Olá"))')
    assert (code, out) == (0, "Olá\n")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/binary", "ws binary messages not supported"),
        ("/close", "no response from web socket"),
        ("/drop", "no response from web socket"),
    ],
)
def test_documented_errors_compare_with_equals(
    run: Run, servers: Servers, path: str, message: str
) -> None:
    source = (
        f'local ok, err = pcall(ws.send_recv, "{servers.ws}{path}", "x")\n'
        f'print(ok, type(err), err == "{message}", "x" .. err)'
    )
    code, out, _ = run.lua(source)
    assert (code, out) == (0, f"false\tstring\ttrue\tx{message}\n")


def test_options_table(run: Run, servers: Servers) -> None:
    source = f"""
local reply = ws.send_recv("{servers.ws}/inspect", "x", {{
  headers = {{["X-Token"] = "t0k"}}, origin = "https://o.example", compression = false,
  timeout = 5, max_size = 100000,
}})
local seen = json.decode(reply).headers
print(seen["x-token"], seen.origin, seen["sec-websocket-extensions"])
print(ws.send_recv("{servers.wss}/", "secure", {{cafile = "{servers.ca_file}"}}))
print(ws.send_recv("{servers.wss}/", "insecure", {{insecure = true}}))
print(pcall(ws.send_recv, "{servers.ws}/silent", "x", {{timeout = 0.2}}))
"""
    code, out, _ = run.lua(source)
    assert out == (
        "t0k\thttps://o.example\tnil\nsecure\ninsecure\nfalse\tno response from web socket\n"
    )
    assert code == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{colour = 'red'}", "invalid option colour: unknown option"),
        ("{timeout = 'soon'}", 'invalid option timeout: "soon" is not a number of seconds'),
        ("{insecure = 1}", "invalid option insecure: expected true or false, got number"),
        (
            "{headers = 'x'}",
            "invalid option headers: expected a table of name = value, got string",
        ),
        ("{subprotocols = {1}}", "invalid option subprotocols: invalid subprotocol name 1"),
        ("'x'", "bad argument #3 to 'ws.send_recv' (table expected, got string)"),
    ],
)
def test_bad_options_name_the_key(run: Run, servers: Servers, options: str, message: str) -> None:
    code, out, _ = run.lua(f'print(pcall(ws.send_recv, "{servers.ws}/", "x", {options}))')
    assert (code, out) == (0, f"false\t{message}\n")


def test_bad_arguments(run: Run) -> None:
    code, out, _ = run.lua(
        "print(pcall(ws.send_recv, nil, 'x'))\nprint(pcall(ws.send_recv, 'http://x/', 'x'))"
        "\nprint(pcall(ws.send_recv, 'ws://127.0.0.1:9/', '\\xff'))"
    )
    assert out == (
        "false\tbad argument #1 to 'ws.send_recv' (string expected, got nil)\n"
        'false\tinvalid url "http://x/": scheme must be ws or wss\n'
        "false\tinvalid argument data: not valid UTF-8 text\n"
    )
    assert code == 0


FORGED = [
    "999",
    "0",
    "-1",
    "1.5",
    "1 << 62",
    "true",
    "'1'",
    "{}",
    "print",
    "coroutine.create(print)",
]


@pytest.mark.parametrize("forged", FORGED)
@pytest.mark.parametrize("method", ["send('x')", "recv(0.1)", "ping(0.1)", "close()"])
def test_a_forged_session_handle_is_the_scripts_error(
    servers: Servers, forged: str, method: str
) -> None:
    # next() finds the private key of a real session: a table with it is a forgery.
    name = method.partition("(")[0]
    ran = run_lua(
        f'local s = ws.connect("{servers.ws}/")\nlocal key = next(s)\n'
        f"local forged = setmetatable({{[key] = {forged}}}, {{__index = function(_, k)\n"
        f"  return function(self, ...) return s[k](self, ...) end end}})\n"
        f"local ok, err = pcall(function() return forged:{method} end)\n"
        "assert(s:ping(5) >= 0, 'the real session still works')\n"
        "return err"
    )
    assert (ran.outcome.error, ran.outcome.result) == (
        None,
        f"bad argument #1 to 'session:{name}' (ws session expected, got a forged handle)",
    )


def test_probe_returns_a_table(run: Run, servers: Servers) -> None:
    source = f"""
local r = ws.probe("{servers.wss}/", "hi", {{cafile = "{servers.ca_file}"}})
print(r.reply, r.status, r.peer:match("^127.0.0.1:") ~= nil, r.timings.total >= r.timings.reply)
print(r.timings.tls > 0, r.cert_expires > now(), r.subprotocol == nil)
"""
    code, out, _ = run.lua(source)
    assert (code, out) == (0, "hi\t101\ttrue\ttrue\ntrue\ttrue\ttrue\n")


def test_calls_work_inside_the_scripts_own_coroutines(run: Run, servers: Servers) -> None:
    source = f"""
local co = coroutine.wrap(function(a)
  local b = coroutine.yield(a .. "1")
  return ws.send_recv("{servers.ws}/", b)
end)
print(co("x"), co("echoed"))
local c = coroutine.create(function() return ws.send_recv("{servers.ws}/", "in create") end)
print(coroutine.resume(c))
"""
    code, out, _ = run.lua(source)
    assert (code, out) == (0, "x1\techoed\ntrue\tin create\n")


def test_return_value_is_the_result(run: Run) -> None:
    assert run.lua("return 'up'")[:2] == (0, "up\n")
    assert run.lua("return {latency = 0.5, ok = true}")[:2] == (
        0,
        '{"latency":0.5,"ok":true}\n',
    )
    assert run.lua("return nil")[:2] == (0, "")


# --- uncaught errors and exit codes ---


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (
            "local x = 1\nws.send_recv('ws://127.0.0.1:9/', 'x')",
            "check.lua:2: connect ws://127.0.0.1:9/: connection refused",
        ),
        ("\n\nerror('boom')", "check.lua:3: boom"),
        (
            "local x = 1\n\nreturn ws.send_recv('ws://127.0.0.1:9/', 'x')",
            "check.lua:3: connect ws://127.0.0.1:9/: connection refused",
        ),
        (
            "local function f()\n  return json.decode('[')\nend\nlocal y = 2\nf()",
            "check.lua:2: json.decode: invalid JSON: expecting value at line 1 column 2",
        ),
        ("local t\nprint(t.x)", "check.lua:2: attempt to index a nil value (local 't')"),
        ("error({code = 1})", "check.lua:1: (error object is a table value)"),
        ("local x = = 1", "check.lua:1: unexpected symbol near '='"),
        ("coroutine.yield(1)", "check.lua:1: attempt to yield from outside a coroutine"),
        (
            "local function f()\n  json.decode('[')\nend\nf()",
            "check.lua:2: json.decode: invalid JSON: expecting value at line 1 column 2",
        ),
    ],
)
def test_uncaught_errors(run: Run, source: str, line: str) -> None:
    code, out, err = run.lua(source)
    assert (code, out, err) == (1, "", line + "\n")


def test_missing_script(run: Run, tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "nope.lua"))
    assert (code, err) == (1, "nope.lua: cannot read script: no such file or directory\n")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--script-timeout", "0"],
            "wsprobe: invalid option --script-timeout: must be positive, got 0\n",
        ),
        (
            ["--concurrency", "many"],
            'wsprobe: invalid option --concurrency: "many" is not a number\n',
        ),
        (
            ["--timeout", "-1"],
            "wsprobe: invalid option timeout: must be a positive number of seconds, got -1.0\n",
        ),
        (["--workers", "0"], "wsprobe: invalid option --workers: must be positive, got 0\n"),
        (
            ["--max-sessions", "x"],
            'wsprobe: invalid option --max-sessions: "x" is not a number\n',
        ),
    ],
)
def test_bad_flags(run: Run, flags: list[str], message: str) -> None:
    code, _, err = run(*flags, run.script("return 1"))
    assert (code, err) == (2, message)


# --- the sandbox: every escape fails ---

ESCAPES = [
    "return io.open('/etc/passwd')",
    "return os.execute('true')",
    "return os.exit(7)",
    "return os.remove('/tmp/x')",
    "return os.rename('/tmp/x', '/tmp/y')",
    "return require('io')",
    "return require('os').execute",
    "return load(string.dump(function() end))()",
    "return python.eval('1')",
    "return python.builtins",
    "return debug.getinfo(1)",
    "return package.loadlib('libc.so.6', 'system')",
    "return loadfile('/etc/passwd')",
    "return dofile('/etc/passwd')",
    "return collectgarbage('count')",
    "return now.__globals__",
    "return ws.send_recv.__globals__",
    "return getmetatable(ws).__index",
    "return string.dump(print)",
]


@pytest.fixture(scope="module")
def escaped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bool, list[str]]]:
    """Every escape tried by a script of one run: by escape, whether its script
    succeeded and the lines it printed."""
    sources = [f"local ok, value = pcall(function() {e} end)\nprint(ok, value)" for e in ESCAPES]
    ran = run_as_one_run(sources, tmp_path_factory.mktemp("escapes"))
    return dict(zip(ESCAPES, ran, strict=True))


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_fail(escaped: dict[str, tuple[bool, list[str]]], source: str) -> None:
    ok, printed = escaped[source]
    assert ok, printed
    (line,) = printed
    result, value = line.split("\t", 1)
    assert result == "false", value


def test_a_script_breaking_its_own_libraries_still_gets_its_error(run: Run) -> None:
    code, _, err = run.lua(
        "string.match = nil; string.format = nil; table.concat = nil\nerror('x')"
    )
    assert (code, err) == (1, "check.lua:2: x\n")


def test_load_of_text_works_and_sees_the_sandbox(run: Run) -> None:
    code, out, _ = run.lua("print(load('return 1 + 1')(), load('return io')())")
    assert (code, out) == (0, "2\tnil\n")


def test_getenv_sees_only_named_variables(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSPROBE_TOKEN", "s3cret")
    monkeypatch.setenv("WSPROBE_OTHER", "hidden")
    source = "print(os.getenv('WSPROBE_TOKEN'), os.getenv('WSPROBE_OTHER'), os.getenv('HOME'))"
    assert run.lua(source, "--env", "WSPROBE_TOKEN")[1] == "s3cret\tnil\tnil\n"
    assert run.lua(source)[1] == "nil\tnil\tnil\n"


def test_python_attributes_are_refused_from_every_exposed_function(run: Run) -> None:
    source = """
local seen = {}
local function walk(t, path)
  for k, v in pairs(t) do
    if type(v) == "userdata" then seen[#seen + 1] = path .. "." .. tostring(k) end
    if type(v) == "table" and v ~= _G and path:len() < 40 then
      walk(v, path .. "." .. tostring(k))
    end
  end
end
walk(_G, "_G")
print(#seen, table.concat(seen, ","))
"""
    code, out, _ = run.lua(source)
    assert (code, out) == (0, "0\t\n")


# --- limits: each next to a healthy script that still succeeds ---


def test_busy_loop_is_stopped_and_others_finish(run: Run, servers: Servers) -> None:
    busy = run.script("while true do pcall(function() while true do end end) end", "busy.lua")
    healthy = run.script(f'print(ws.send_recv("{servers.ws}/", "fine"))', "healthy.lua")
    code, out, err = run("--instruction-limit", "20", busy, healthy)
    assert code == 1
    assert out == "[healthy.lua] fine\n"
    assert err == "busy.lua: script exceeded its CPU limit of 20 million instructions\n"


def test_memory_bomb_is_stopped_and_others_finish(run: Run, servers: Servers) -> None:
    bomb = run.script(
        "local t = {}\nfor i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end", "bomb.lua"
    )
    healthy = run.script(f'print(ws.send_recv("{servers.ws}/", "fine"))', "healthy.lua")
    code, out, err = run("--memory-limit", "16", bomb, healthy)
    assert (code, out) == (1, "[healthy.lua] fine\n")
    assert err == "bomb.lua: script exceeded its memory limit of 16 MiB\n"


def test_wall_clock_limit_while_waiting(run: Run, servers: Servers) -> None:
    # The call would wait a minute: only the script's limit can end it.
    slow = run.script(f'ws.send_recv("{servers.ws}/silent", "x", {{timeout = 60}})', "slow.lua")
    healthy = run.script("return 'ok'", "healthy.lua")
    code, out, err = run("--script-timeout", "1", slow, healthy)
    assert (code, out) == (1, "[healthy.lua] ok\n")
    assert err == "slow.lua: script exceeded its time limit of 1s\n"


def test_wall_clock_limit_while_computing(run: Run) -> None:
    code, _, err = run.lua(
        "local t = now() while now() - t < 10 do end", "--script-timeout", "0.3"
    )
    assert (code, err) == (1, "check.lua: script exceeded its time limit of 0.3s\n")


def test_erroring_script_does_not_stop_others(run: Run) -> None:
    bad = run.script("error('nope')", "bad.lua")
    good = run.script("print('yes')", "good.lua")
    code, out, err = run(bad, good)
    assert (code, out, err) == (1, "[good.lua] yes\n", "bad.lua:1: nope\n")


def test_json_output(run: Run, servers: Servers) -> None:
    good = run.script(f'print("chatty")\nreturn ws.send_recv("{servers.ws}/", "r")', "good.lua")
    bad = run.script("error('nope')", "bad.lua")
    code, out, err = run("--json", good, bad)
    assert code == 1
    records = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert records["good.lua"]["ok"] is True
    assert records["good.lua"]["result"] == "r"
    assert records["good.lua"]["error"] is None
    assert (records["good.lua"]["status"], records["good.lua"]["value"]) == ("ok", "r")
    assert records["bad.lua"] == {
        "name": "bad.lua",
        "ok": False,
        "result": None,
        "error": "bad.lua:1: nope",
        "duration": records["bad.lua"]["duration"],
        "status": "critical",
        "value": None,
        "signal": None,
    }
    assert err == "[good.lua] chatty\n"


def test_many_scripts_waiting_at_once(run: Run, servers: Servers) -> None:
    source = f'return ws.send_recv("{servers.ws}/delay", "x")'
    paths = [run.script(source, f"s{i:03}.lua") for i in range(200)]
    before = threads_now()
    most: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.01):
            most.append(threads_now())

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        code, out, err = run("--json", *paths)
    finally:
        elapsed = time.monotonic() - started
        sampling.set()
        sampler.join()
    assert code == 0, err
    assert len(out.splitlines()) == 200
    assert elapsed < 60  # one after another, 200 s
    # No thread per script: at most the sampler itself joins the threads already there.
    assert max(most) <= before + 1


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


# --- the ws page's examples, as `make demo` runs them ---


def test_seed_examples(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import LoopThread
    from wsprobe.cli.localserver import start_local

    loop = LoopThread()
    directory = run.dir / "tls"
    try:
        servers = loop.run(
            start_local("127.0.0.1", 8765, tls=True, tls_port=8766, tls_dir=directory)
        )
    except OSError:
        loop.stop()
        pytest.skip("ports 8765/8766 are taken on this machine")
    try:
        outputs = {}
        for script in sorted(EXAMPLES.glob("*.lua")):
            code, out, err = run("--cafile", str(directory / "ca.pem"), str(script))
            outputs[script.name] = (code, out, err)
    finally:
        loop.run(servers.close())
        loop.stop()
    assert outputs["01-basico.lua"] == (0, "Resposta do servidor:\tOlá, WebSocket!\n", "")
    code, out, _ = outputs["02-seguro.lua"]
    assert code == 0
    assert re.fullmatch(r'Resposta segura:\t\{"acao":"ping","timestamp":\d+\.\d+\}\n', out)
    code, out, err = outputs["03-tratamento-de-erros.lua"]
    assert (code, out) == (0, "Servidor\tws://127.0.0.1:8765/ws\trespondendo\n")
    assert [line.split(" ", 2)[2] for line in err.splitlines()] == [
        "03-tratamento-de-erros.lua: Erro no WebSocket: no response from web socket",
        "03-tratamento-de-erros.lua: Erro no WebSocket: connect ws://127.0.0.1:9/socket: "
        "connection refused",
    ]
    assert outputs["04-conexoes.lua"] == (
        0,
        "Conexão bem-sucedida:\tws://localhost:8765/ws\n"
        "Conexão bem-sucedida:\twss://localhost:8766/ws\n"
        "Falha na conexão:\tws://127.0.0.1:9/ws\t-\t"
        "connect ws://127.0.0.1:9/ws: connection refused\n",
        "",
    )
    assert outputs["05-dados-complexos.lua"] == (0, "", "")


def test_compact_frees_a_waiting_state() -> None:
    from wsprobe.lua.runtime import Done, LuaScript, Request, ScriptLimits

    limits = ScriptLimits(64 << 20, 10**8, 60, "memory", "cpu", "time")
    script = LuaScript(
        "wait.lua",
        b'return ws.send_recv("ws://127.0.0.1:9/", "x")',
        limits=limits,
        environment={},
        host={},
    )
    assert isinstance(script.start(), Request)
    before = script.memory_used()
    script.compact()
    assert script.memory_used() < before * 0.85
    assert script.resume(True, "reply") == Done(("reply",))


def test_many_in_flight_still_run_correctly(run: Run, servers: Servers) -> None:
    source = f'return ws.send_recv("{servers.ws}/", "compact")'
    paths = [run.script(source, f"c{i}.lua") for i in range(3)]
    code, out, _ = run("--concurrency", "1000", *paths)
    assert (code, sorted(out.splitlines())) == (0, [f"[c{i}.lua] compact" for i in range(3)])
