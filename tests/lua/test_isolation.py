"""Scripts in one process share nothing: each has its own Lua state, whose globals,
libraries and modules (built on first use) no other script sees."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.lua import run_lua, run_together

# Everything a script can change of what it was given, before and after using it.
MEDDLER = """
string.upper = function() return "meddled" end
string.split = function() return {"meddled"} end
table.insert, math.pi, os.getenv = nil, 0, nil
ws.send_recv, json.encode, http.get = "meddled", "meddled", "meddled"
require("store").put = "meddled"
coroutine.create, pcall = nil, nil
meddled = true
setmetatable(_G, { __index = function() return "meddled" end })
sleep(0.3)
return "done"
"""

# Reads all of it, while the meddler waits with its changes in place.
WITNESS = """
sleep(0.1)
print(rawget(_G, "meddled"), getmetatable(_G), undefined)
print(string.upper("b"), ("a,b"):split(",")[2], type(table.insert), math.pi > 3)
print(type(ws.send_recv), type(json.encode), type(http.get), type(store.put))
print(type(coroutine.create), type(pcall), type(os.getenv))
return "done"
"""

SEEN = (
    "nil\tnil\tnil\nB\tb\tfunction\ttrue\n"
    + "function\t" * 3
    + "function\n"
    + ("function\tfunction\tfunction\n")
)


def test_a_script_sees_nothing_of_another_in_the_same_process() -> None:
    meddler, witness = run_together({"meddler.lua": MEDDLER, "witness.lua": WITNESS})
    assert (meddler.outcome.error, meddler.outcome.result) == (None, "done")
    assert (witness.outcome.error, witness.printed) == (None, SEEN)


def test_a_script_started_after_another_ended_sees_nothing_of_it() -> None:
    assert run_lua(MEDDLER.replace("sleep(0.3)", "")).outcome.result == "done"
    assert run_lua(WITNESS.replace("sleep(0.1)", "")).printed == SEEN


@pytest.mark.parametrize(
    "source",
    [
        # the libraries' extensions, by the library and as methods, before anything else
        'return table.concat(("a,b"):split(","), "+") .. string.trim("  x ")',
        'return string.trim("  x ") .. table.concat(("a,b"):split(","), "+")',
        'return math.pow(2, 3) .. tostring(table.contains({1}, 1)) .. string.trim(" x ")',
    ],
)
def test_the_extensions_are_there_whichever_is_used_first(source: str) -> None:
    assert run_lua(source).outcome.result in {"a+bx", "xa+b", "8.0truex"}


def test_a_module_is_built_once_per_script() -> None:
    source = "local a = ws.send_recv; json.x = 1; return a == ws.send_recv and json.x == 1"
    assert run_lua(source).outcome.result is True


def test_an_extension_the_script_replaced_first_stays_replaced() -> None:
    source = "string.trim = 1; local n = 0; for _ in pairs(string) do n = n + 1 end\n"
    source += "return string.trim .. type(string.split) .. n"
    assert run_lua(source).outcome.result == "1function20"


# A script whose sessions hold all but `room` bytes of its memory limit reads a
# module for the first time, or has json.encode make a string: lupa cannot recover
# from the limit hit while it hands a Python value to Lua (the process hangs).
AT_THE_LIMIT = """
import sys
from wsprobe.lua import registry
from wsprobe.lua.runtime import LuaScript, ScriptLimits

class Context:
    lua = None

host = {op.name.encode(): op.handler for op in registry.IN_PLACE.values()}
limits = ScriptLimits(1 << 20, 10**8, 60.0, "memory limit", "cpu", "time")
source = sys.argv[1].encode()
for room in range(300, 3000, 100):
    context = Context()
    script = context.lua = LuaScript("m.lua", source, limits=limits, environment={}, host=host,
                                     subject=context)
    script.start()
    script.compact()
    script.reserve(limits.memory - script.memory_used() - room)
    print(script.resume(True, None).values[0], flush=True)
"""


@pytest.mark.parametrize(
    "source",
    [
        "sleep(0)\nlocal ok, err = pcall(function() return http.get end)\n"
        "return ok and type(err) == 'function' and 'fits' or err",
        "local t, encode = {}, json.encode\nfor i = 1, 300 do t[i] = i end\nsleep(0)\n"
        "local ok, err = pcall(encode, t)\nreturn ok and 'fits' or err",
    ],
)
def test_what_lua_takes_from_python_at_the_memory_limit_is_the_limits_error(source: str) -> None:
    shown = subprocess.run(
        [sys.executable, "-c", AT_THE_LIMIT, source],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    assert set(shown[:5]) == {"not enough memory"}
    assert set(shown[:-1]) <= {"not enough memory", "fits"}


# A script gets an answer (a stored value, a cached one, a message) as one string
# `over` bytes larger than what is left under its memory limit: the process aborts
# when lupa hits the limit while it hands that string to Lua.
ANSWER_AT_THE_LIMIT = """
import sys
from wsprobe.lua.runtime import LuaScript, ScriptLimits

limits = ScriptLimits(1 << 20, 10**8, 60.0, "memory limit", "cpu", "time")
ok = sys.argv[2] == "ok"
for over in range(0, 40000, 4000):
    script = LuaScript("m.lua", sys.argv[1].encode(), limits=limits, environment={}, host={})
    script.start()
    script.compact()
    answer = b"x" * (limits.memory - script.memory_used() + over)
    step = script.resume(ok, answer if ok else answer.decode())
    print(step.values[0] if hasattr(step, "values") else step.message, flush=True)
"""

CAUGHT = 'local ok, v = pcall(ws.send_recv, "u", "d")\nreturn ok and #v or v'


@pytest.mark.parametrize(
    ("source", "ok", "shown"),
    [
        (CAUGHT, "ok", "not enough memory"),
        (CAUGHT, "error", "not enough memory"),
        ('return #ws.send_recv("u", "d")', "ok", "memory limit"),
    ],
)
def test_an_answer_that_would_not_fit_under_the_memory_limit_is_the_limits_error(
    source: str, ok: str, shown: str
) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", ANSWER_AT_THE_LIMIT, source, ok],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-300:]
    assert set(ran.stdout.split("\n")[:-1]) == {shown}
