"""Properties of every function a script can call, fuzzed with Hypothesis.

Each example is a real script run by the real runner: it calls functions of ``ws``,
``json``, ``log``, a session's methods and the safe globals with generated arguments
of every Lua type (nil, booleans, integers, floats with NaN and infinities, strings
that are not UTF-8, tables nested or cyclic, functions, coroutines, ``json.null``),
each under ``pcall``. The property: every failure is a one-line string error that
shows no password, and the script itself runs to its end.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Servers
from tests.support.fuzz import FUZZ, leaks, secrets, urls
from tests.support.lua import run_lua
from tests.support.net import ports
from wsprobe.lua.job import Job, RunSettings
from wsprobe.lua.output import Output
from wsprobe.lua.supervisor import Supervisor
from wsprobe.options import make_options

pytestmark = pytest.mark.slow


def lua_string(value: bytes) -> str:
    """A Lua literal for any bytes (not UTF-8 included)."""
    return '"' + "".join(f"\\{b:03d}" for b in value) + '"'


SCALARS = st.one_of(
    st.sampled_from(["nil", "true", "false", "json.null", "math.maxinteger", "math.mininteger"]),
    st.sampled_from(["0/0", "1/0", "-1/0", "-0.0", "1e308", "0.5", "1000", "1000.0", "3.5"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.binary(max_size=12).map(lua_string),
    st.text(max_size=12).map(lambda t: lua_string(t.encode())),
    st.sampled_from(
        [
            "function() end",
            "coroutine.create(function() end)",
            "print",
            "setmetatable({}, {__tostring = function() error('boom') end})",
            "setmetatable({}, {__index = function() error('no') end})",
            "(function() local t = {} t.self = t return t end)()",
            "string.rep('x', 200)",
        ]
    ),
)


def tables(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    key = st.sampled_from(
        ["timeout", "headers", "binary", "max_size", "insecure", "cafile", "origin", "x"]
    )
    return st.one_of(
        st.lists(children, max_size=3).map(lambda items: "{" + ", ".join(items) + "}"),
        st.lists(st.tuples(key, children), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k} = {v}" for k, v in pairs) + "}"
        ),
    )


VALUES = st.recursive(SCALARS, tables, max_leaves=6)
# For session:recv and session:ping, whose first argument is a timeout: any type,
# but no number large enough to make the example wait for it.
WAITS = st.one_of(
    st.sampled_from(["nil", "0", "-1", "0.05", "0/0", "1/0", "1e308", "math.maxinteger"]),
    SCALARS.filter(lambda value: not value.lstrip("-").replace(".", "").isdigit()),
)
# require() echoes the name it was given, raw (see test_boundary's strict xfail).
NAMES = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=12).map(
    lambda t: lua_string(t.encode())
)


def credential_options(secret: str) -> st.SearchStrategy[str]:
    header = st.sampled_from(["Authorization", "Cookie", "X-Token"])
    return st.tuples(header, st.sampled_from(["Bearer ", "", "a=1; s="])).map(
        lambda h: (
            f"{{timeout = 1, headers = {{[{lua_string(h[0].encode())}] = "
            f"{lua_string((h[1] + secret).encode())}}}}}"
        )
    )


def calls(url: st.SearchStrategy[str], options: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One call to one function, with arguments of any type (a URL first where one goes)."""
    value = VALUES
    return st.one_of(
        st.tuples(st.sampled_from(["ws.send_recv", "ws.probe"]), url, value, options).map(
            lambda c: f"{c[0]}({c[1]}, {c[2]}, {c[3]})"
        ),
        st.tuples(url, options).map(lambda c: f"ws.connect({c[0]}, {c[1]})"),
        st.tuples(st.sampled_from(["json.encode", "json.decode", "os.getenv"]), value).map(
            lambda c: f"{c[0]}({c[1]})"
        ),
        st.one_of(NAMES, SCALARS.filter(lambda v: not v.startswith('"'))).map(
            lambda name: f"require({name})"
        ),
        st.tuples(
            st.sampled_from(["log.info", "log.error", "now", "tostring", "print"]), value
        ).map(lambda c: f"{c[0]}({c[1]}, {c[1]})"),
        st.tuples(st.sampled_from(["send", "close"]), value, value).map(
            lambda c: f"session:{c[0]}({c[1]}, {c[2]})"
        ),
        st.tuples(st.sampled_from(["recv", "ping"]), WAITS, value).map(
            lambda c: f"session:{c[0]}({c[1]}, {c[2]})"
        ),
        st.tuples(st.sampled_from(["send", "recv", "close"]), value).map(
            lambda c: f"session.{c[0]}({c[1]})"
        ),
        st.sampled_from(["session.close_code", "session.close_reason", "session.subprotocol"]).map(
            lambda fact: f"assert(type({fact}) ~= 'userdata')"
        ),
    )


SCRIPT = """
local session = ws.connect({echo}, {{timeout = 1}})
local errors = {{}}
local calls = {{
{calls}
}}
for _, call in ipairs(calls) do
  local ok, err = pcall(call)
  if not ok then
    errors[#errors + 1] = type(err) == "string" and err or ("not a string: " .. type(err))
  end
end
return errors
"""


@pytest.fixture(scope="module")
def script_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-lua")


SETTINGS = RunSettings(options=make_options(timeout=2), script_timeout=20, json_output=True)


class Workers:
    """One supervisor and its worker process for every example, as ``wsprobe run``
    runs them (a worker runs many scripts, each in a state of its own): starting a
    worker for each example would cost more than the example."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        self._supervisor = Supervisor(SETTINGS, workers=1)
        self._runner.run(self._supervisor.start())

    def run(self, path: Path, stdout: io.StringIO, stderr: io.StringIO) -> int:
        """Run the script at ``path``, writing its lines and record as ``wsprobe run``
        does; 0 when it succeeded, else 1."""
        output = Output(
            [str(path)],
            json_output=SETTINGS.json_output,
            log_level=SETTINGS.log_level,
            stdout=stdout,
            stderr=stderr,
        )
        job = Job(output.name_of(str(path)), path=str(path))
        outcome, lines = self._runner.run(self._supervisor.run(job))
        output.lines(outcome.name, lines)
        output.finished(outcome)
        output.flush()
        return 0 if outcome.ok else 1

    def close(self) -> None:
        self._runner.run(self._supervisor.close())
        self._runner.close()


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    running = Workers()
    yield running
    running.close()


@FUZZ
@given(secret=secrets, data=st.data())
def test_every_lua_function(
    servers: Servers, script_dir: Path, workers: Workers, secret: str, data: st.DataObject
) -> None:
    def lua_url(text: str) -> str:
        return lua_string(text.encode())

    url = st.one_of(
        urls(ports(servers), secret).map(lua_url),
        st.just(lua_url(servers.ws + "/")),
        SCALARS,
    )
    options = st.one_of(credential_options(secret), VALUES)
    body = data.draw(st.lists(calls(url, options), min_size=1, max_size=6))
    source = SCRIPT.format(
        echo=lua_url(servers.ws + "/"),
        calls="\n".join(f"  function() {call} end," for call in body),
    )
    path = script_dir / "fuzz.lua"
    path.write_text(source)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = workers.run(path, stdout, stderr)
    report = json.loads(stdout.getvalue())
    assert (code, report["error"]) == (0, None), source
    assert isinstance(report["result"], list), report
    for message in report["result"]:
        assert isinstance(message, str), message
        assert not message.startswith("not a string"), message
        assert "\n" not in message, message
        assert not leaks(secret, message), message
    assert not leaks(secret, stderr.getvalue())


# The globals few scripts call are built by the first call of one (a stand-in until
# then): a script sees them the same whether that call is its own or came before.
RARE = st.sampled_from(
    [
        "with_timeout",
        "signal",
        "diff",
        "require",
        "setmetatable",
        "load",
        "loadstring",
        "setfenv",
        "getfenv",
        "coroutine.wrap",
    ]
)
RARE_ARGUMENTS = st.lists(
    st.one_of(
        SCALARS.filter(lambda value: "setmetatable" not in value),
        st.sampled_from(
            [
                "{}",
                "{__gc = print}",
                "'return 1'",
                "'x x'",
                "function(a) return a, 2 end",
                "function() error('e', 2) end",
                "function() error({}) end",
                "function() coroutine.yield(1) end",
                "function() return signal('S') end",
            ]
        ),
    ),
    max_size=3,
)
# Where the call is made: each way changes which frames sit under it.
PLACES = st.sampled_from(
    [
        "{call}",
        "local r = {call}",
        "do return {call} end",
        "last = select(2, pcall(function() local r = {call} return r end))",
        "last = select(2, pcall(function() return {call} end))",
        "last = select(2, pcall(coroutine.wrap(function() local r = {call} return r end)))",
        "last = select(2, pcall(load('local r = {quoted} return r', '=inner')))",
    ]
)


def rare_call(name: str, arguments: list[str], place: str) -> str:
    call = f"{name}({', '.join(arguments)})"
    return place.format(call=call, quoted=lua_string(call.encode()))


def seen(source: str) -> tuple[object, ...]:
    outcome = run_lua(source).outcome
    shown = (outcome.ok, outcome.result, outcome.error, outcome.signal)
    return tuple(re.sub(r"0x[0-9a-f]+", "0x", str(value)) for value in shown)


@FUZZ
@given(
    st.lists(
        st.builds(rare_call, RARE, RARE_ARGUMENTS, PLACES).map(lambda line: line + "\n"),
        min_size=1,
        max_size=4,
    )
)
def test_the_rare_globals_behave_the_same_built_by_their_first_call_or_before(
    lines: list[str],
) -> None:
    source = "local last\n" + "".join(lines) + "return last"
    # Built before, on the script's first line: every line stays where it was.
    assert seen(source) == seen("pcall(getfenv) " + source), source
