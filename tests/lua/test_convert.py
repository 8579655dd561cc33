"""The Lua↔Python conversion and the json module, apart from running scripts."""

from __future__ import annotations

import math
from typing import Any

import lupa.lua54 as lupa
import pytest

from wsprobe.errors import ScriptCallError
from wsprobe.lua import jsoncodec
from wsprobe.lua.convert import MAX_DEPTH, ConversionError, Converter
from wsprobe.lua.runtime import Failed, LuaScript, Request, ScriptLimits


class Lua:
    """A bare Lua state and a converter over it, as the runtime builds one."""

    def __init__(self) -> None:
        self.runtime: Any = lupa.LuaRuntime(encoding=None)  # type: ignore[call-arg]
        self.null = self.runtime.eval("setmetatable({}, {__metatable = false})")
        self.convert = Converter(
            lua_type=self.eval("type"),
            identity=self.eval("function(v) return string.format('%p', v) end"),
            new_table=self.runtime.table,
            null=self.null,
        )

    def eval(self, expression: str) -> Any:
        self.runtime.globals()[b"null"] = self.null
        return self.runtime.eval(expression.encode())


@pytest.fixture
def lua() -> Lua:
    return Lua()


@pytest.mark.parametrize(
    ("expression", "python"),
    [
        ("nil", None),
        ("true", True),
        ("42", 42),
        ("4.5", 4.5),
        ("'olá'", "olá"),
        ("{}", []),
        ("{1, 'two', {3}}", [1, "two", [3]]),
        ("{a = 1, b = {c = null}}", {"a": 1, "b": {"c": None}}),
        ("{1, null, 3}", [1, None, 3]),
    ],
)
def test_lua_to_python(lua: Lua, expression: str, python: Any) -> None:
    assert lua.convert.to_python(lua.eval(expression)) == python


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("function() end", "cannot encode a function"),
        # lupa hands a Lua thread to Python as a function; the message follows it.
        ("coroutine.create(function() end)", "cannot encode a function"),
        ("0/0", "cannot encode NaN or infinity"),
        ("1/0", "cannot encode NaN or infinity"),
        ("'\\255'", "string is not valid UTF-8"),
        ("{1, 2, nil, 4}", "table keys must be all strings or 1..n with no gaps"),
        ("{[1] = 1, x = 2}", "table keys must be all strings or 1..n with no gaps"),
        ("(function() local t = {} t.t = t return t end)()", "circular reference"),
        (
            "(function() local t = {} for i = 1, 201 do t = {t} end return t end)()",
            "nesting deeper than 200 levels",
        ),
    ],
)
def test_lua_values_that_cannot_cross(lua: Lua, expression: str, message: str) -> None:
    with pytest.raises(ConversionError) as info:
        lua.convert.to_python(lua.eval(expression))
    assert str(info.value) == message


def test_shared_subtables_are_not_cycles(lua: Lua) -> None:
    value = lua.eval("(function() local a = {1} return {a, a} end)()")
    assert lua.convert.to_python(value) == [[1], [1]]


def test_python_to_lua(lua: Lua) -> None:
    table = lua.convert.to_lua({"list": [1, None, "é"], "bytes": b"\x00", "t": (True,)})
    show = lua.eval(
        "function(t) return t.list[1], t.list[2] == null, t.list[3], t.bytes, t.t[1] end"
    )
    assert show(table) == (1, True, "é".encode(), b"\x00", True)
    assert lua.convert.to_lua(None) is None
    assert lua.convert.to_lua(1.5) == 1.5


@pytest.mark.parametrize("value", [object(), {1, 2}, ValueError("x"), lambda: None])
def test_unknown_python_types_never_reach_lua(lua: Lua, value: Any) -> None:
    with pytest.raises(TypeError, match=r"cannot be passed to Lua$"):
        lua.convert.to_lua(value)
    with pytest.raises(TypeError):
        lua.convert.to_lua([value])


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("{b = 1, a = {true, false}}", '{"a":[true,false],"b":1}'),
        ("10 / 2", "5.0"),
        ("45.6", "45.6"),
        ("'olá \"x\"'", '"olá \\"x\\""'),
        ("{}", "[]"),
        ("null", "null"),
    ],
)
def test_json_encode(lua: Lua, expression: str, text: str) -> None:
    assert jsoncodec.encode(lua.convert, lua.eval(expression)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"[1,", "json.decode: invalid JSON: expecting value at line 1 column 4"),
        (b"NaN", "json.decode: NaN is not valid JSON"),
        (b"1e400", "json.decode: number out of range: 1e400"),
        (b"99999999999999999999", "json.decode: number out of range: 99999999999999999999"),
        (b"\xff", "json.decode: text is not valid UTF-8"),
        (b"[" * 201 + b"]" * 201, "json.decode: nesting deeper than 200 levels"),
        (b"[" * 5000 + b"]" * 5000, "json.decode: nesting deeper than 200 levels"),
    ],
)
def test_json_decode_errors(lua: Lua, text: bytes, message: str) -> None:
    with pytest.raises(ScriptCallError) as info:
        jsoncodec.decode(lua.convert, text)
    assert str(info.value) == message


def test_json_decode_keeps_nulls_and_integers(lua: Lua) -> None:
    value = jsoncodec.decode(lua.convert, b'{"a":[1,null,2.5],"b":null}')
    assert lua.convert.to_python(value) == {"a": [1, None, 2.5], "b": None}
    assert lua.eval("math.type")(value[b"a"][1]) == b"integer"
    assert math.isclose(value[b"a"][3], 2.5)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


UNREPRESENTABLE = [
    ("\ud800", "string holds a lone surrogate \\ud800 (not valid UTF-8)"),
    ({"a": ["\udfff"]}, "string holds a lone surrogate \\udfff (not valid UTF-8)"),
    (nested(MAX_DEPTH + 5), f"nesting deeper than {MAX_DEPTH} levels"),
]


@pytest.mark.parametrize(("value", "reason"), UNREPRESENTABLE)
def test_a_reply_lua_cannot_hold_is_the_calls_error(value: Any, reason: str) -> None:
    # Not the memory limit's message: the script is told what is wrong, and may catch it.
    limits = ScriptLimits(64 << 20, 10**8, 60, "memory", "cpu", "time")
    source = b'local ok, err = pcall(store.get, "k")\nreturn err .. " | " .. store.get("k")'
    script = LuaScript("get.lua", source, limits=limits, environment={}, host={})
    assert isinstance(script.start(), Request)
    message = f"value not representable in Lua: {reason}"
    assert script.resume(True, value) == Request("store_get", (b"k", False))
    assert script.resume(True, value) == Failed(f"get.lua:2: {message}")
