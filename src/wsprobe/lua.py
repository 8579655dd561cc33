"""One sandboxed Lua 5.4 state per script, through ``lupa``: the only module that imports it.

It owns the conversion between Lua and Python values (one place for it), the
``json`` module's semantics, and the stepping of a script's coroutine. It knows
nothing of asyncio or WebSockets: the runner drives it.

Lua strings are bytes (the runtime has no encoding), so text is decoded here, with
a clear error when it is not UTF-8, and never by lupa behind our back.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, cast

import lupa.lua54 as lupa

__all__ = ["ConversionError", "LuaScript", "ScriptLimits", "Step"]

# Conversion recurses in Python (a few frames a level, under its limit of 1000).
_MAX_DEPTH = 200
_INT64 = (-(2**63), 2**63 - 1)


class ConversionError(ValueError):
    """A value cannot cross between Lua and Python (or JSON); the text says why."""


@dataclass(frozen=True, slots=True)
class ScriptLimits:
    """The bounds of one script: memory in bytes, Lua instructions, wall clock."""

    memory: int
    instructions: int
    seconds: float
    memory_message: str
    cpu_message: str
    time_message: str


@dataclass(frozen=True, slots=True)
class Step:
    """What a script did when last resumed.

    ``kind`` is ``"yield"`` (it asks for ``op`` with ``args``), ``"done"`` (``values``
    are its return values, as Python) or ``"error"`` (``message`` is ready to print).
    """

    kind: str
    op: str = ""
    args: tuple[Any, ...] = ()
    values: tuple[Any, ...] = ()
    message: str = ""


def _no_attributes(_obj: object, name: object, _is_setting: bool) -> object:
    # Nothing of Python is reachable from a script: no __globals__, no __class__.
    raise AttributeError(f"access to Python attribute {name!r} is not allowed")


class LuaScript:
    """A script in its own Lua state, run as a coroutine one :class:`Step` at a time.

    ``write`` receives each printed line (without its newline), ``log`` receives a
    level and a line. :meth:`start` runs the script to its first request;
    :meth:`resume` answers that request.
    """

    def __init__(
        self,
        name: str,
        source: bytes,
        *,
        limits: ScriptLimits,
        environment: Mapping[str, str],
        write: Callable[[str], None],
        log: Callable[[str, str], None],
    ) -> None:
        self.name = name
        self._source = source
        self._limits = limits
        # Typed as Any: types-lupa describes a str-only runtime, and this one speaks bytes.
        runtime = lupa.LuaRuntime(  # type: ignore[call-arg]  # types-lupa lacks these
            encoding=None,
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_no_attributes,
            max_memory=limits.memory,
        )
        self._lua = cast(Any, runtime)
        host = self._table(
            {
                b"write": lambda text: write(_text(text)),
                b"log": lambda level, text: log(_text(level), _text(text)),
                b"now": time.time,
                b"monotonic": time.monotonic,
                b"json_encode": self._json_encode,
                b"json_decode": self._json_decode,
            }
        )
        settings = self._table(
            {
                b"instruction_limit": limits.instructions,
                b"wall_deadline": time.monotonic() + limits.seconds,
                b"cpu_message": limits.cpu_message.encode(),
                b"time_message": limits.time_message.encode(),
                b"chunk_name": f"@{name}".encode(),
                b"display_name": name.encode(),
                b"environment": self._table(
                    {k.encode(): v.encode() for k, v in environment.items()}
                ),
            }
        )
        prelude = self._lua.globals().load(_prelude_bytecode(), b"=wsprobe", b"b")
        self._start, self._step, self._null, self._identity, self._type = prelude(host, settings)
        self._null_id = self._identity(self._null)

    def start(self) -> Step:
        """Compile and run the script until it first asks for something or ends."""
        return self._call(self._start, self._source)

    def compact(self) -> None:
        """Collect the state's garbage: the source, the prelude's bytecode and what
        compiling left behind, about a quarter of a fresh state's data, for ~25 µs."""
        self._lua.gccollect()

    def resume(self, ok: bool, value: Any) -> Step:
        """Answer the pending request: ``ok`` and a Python value (a tuple for several
        return values), or an error whose ``str`` is the message."""
        if not ok:
            return self._call(self._step, False, str(value).encode())
        values = value if isinstance(value, tuple) else (value,)
        try:
            converted = [self.to_lua(item) for item in values]
        except lupa.LuaMemoryError:
            return Step("error", message=self._limits.memory_message)
        return self._call(self._step, True, *converted)

    def memory_used(self) -> int:
        """Bytes the Lua state holds now."""
        return int(self._lua.get_memory_used())

    def _call(self, function: Any, *args: Any) -> Step:
        try:
            result = function(*args)
        except lupa.LuaMemoryError:
            return Step("error", message=self._limits.memory_message)
        if not isinstance(result, tuple):
            result = (result,)
        kind = result[0].decode()
        if kind == "yield":
            return Step("yield", op=_text(result[1]), args=result[2:])
        if kind == "done":
            return Step("done", values=tuple(self._result(v) for v in result[1:]))
        message = _text(result[1]) if isinstance(result[1], bytes) else str(result[1])
        if message.endswith("not enough memory"):
            message = self._limits.memory_message
        return Step("error", message=message)

    def _result(self, value: Any) -> Any:
        try:
            return self.to_python(value)
        except ConversionError:
            return self._lua.globals().tostring(value).decode(errors="replace")

    # --- conversion: the one place where Lua and Python values meet ---

    def to_python(self, value: Any, depth: int = 0, seen: frozenset[bytes] = frozenset()) -> Any:
        """A Lua value as Python: strings as ``str``, sequences as lists, tables as dicts.

        ``json.null`` becomes ``None``. Raises :class:`ConversionError` for functions,
        userdata, cycles, mixed keys, NaN/infinity and strings that are not UTF-8.
        """
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ConversionError("cannot encode NaN or infinity")
            return value
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise ConversionError("string is not valid UTF-8") from None
        kind = self._type(value).decode()
        if kind != "table":
            raise ConversionError(f"cannot encode a {kind}")
        identity = self._identity(value)
        if identity == self._null_id:
            return None
        if identity in seen:
            raise ConversionError("circular reference")
        if depth >= _MAX_DEPTH:
            raise ConversionError(f"nesting deeper than {_MAX_DEPTH} levels")
        seen = seen | {identity}
        items = list(value.items())
        if all(type(key) is int for key, _ in items):
            keys = sorted(key for key, _ in items)
            if keys == list(range(1, len(keys) + 1)):
                return [self.to_python(value[key], depth + 1, seen) for key in keys]
        if all(isinstance(key, bytes) for key, _ in items):
            return {
                self.to_python(key): self.to_python(item, depth + 1, seen) for key, item in items
            }
        raise ConversionError("table keys must be all strings or 1..n with no gaps")

    def to_lua(self, value: Any, depth: int = 0) -> Any:
        """A Python value as Lua; ``None`` inside a list or dict becomes ``json.null``."""
        if depth >= _MAX_DEPTH:
            raise ConversionError(f"nesting deeper than {_MAX_DEPTH} levels")
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, list):
            table = self._lua.table()
            for index, item in enumerate(value, 1):
                table[index] = self._nested(item, depth)
            return table
        if isinstance(value, dict):
            table = self._lua.table()
            for key, item in value.items():
                table[str(key).encode()] = self._nested(item, depth)
            return table
        return value

    def _nested(self, value: Any, depth: int) -> Any:
        return self._null if value is None else self.to_lua(value, depth + 1)

    def _table(self, values: dict[bytes, Any]) -> Any:
        table = self._lua.table()
        for key, value in values.items():
            table[key] = value
        return table

    # --- the json module ---

    def _json_encode(self, value: Any) -> tuple[bool, bytes]:
        try:
            document = self.to_python(value)
        except ConversionError as exc:
            return False, f"json.encode: {exc}".encode()
        except RecursionError:
            return False, f"json.encode: nesting deeper than {_MAX_DEPTH} levels".encode()
        text = json.dumps(
            document, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        return True, text.encode()

    def _json_decode(self, text: bytes) -> tuple[bool, Any]:
        try:
            document = json.loads(
                text, parse_constant=_reject_constant, parse_int=_lua_integer, parse_float=_finite
            )
            return True, self.to_lua(document)
        except ConversionError as exc:
            return False, f"json.decode: {exc}".encode()
        except json.JSONDecodeError as exc:
            reason = exc.msg[:1].lower() + exc.msg[1:]
            where = f"line {exc.lineno} column {exc.colno}"
            return False, f"json.decode: invalid JSON: {reason} at {where}".encode()
        except UnicodeDecodeError:
            return False, b"json.decode: text is not valid UTF-8"
        except RecursionError:
            return False, f"json.decode: nesting deeper than {_MAX_DEPTH} levels".encode()


@functools.cache
def _prelude_bytecode() -> bytes:
    # Compiling the prelude costs more than creating a Lua state: compile it once
    # per process and load its bytecode (ours, trusted) into every script's state.
    compiler = cast(Any, lupa.LuaRuntime(encoding=None))  # type: ignore[call-arg]
    # Stripped of debug information: smaller in each of thousands of states, and
    # error locations only ever name the script's own lines.
    source = files("wsprobe").joinpath("sandbox.lua").read_bytes()
    return bytes(compiler.globals().string.dump(compiler.compile(source), True))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _reject_constant(name: str) -> Any:
    raise ConversionError(f"{name} is not valid JSON")


def _lua_integer(text: str) -> int | float:
    number = int(text)
    if not _INT64[0] <= number <= _INT64[1]:
        raise ConversionError(f"number out of range: {text}")
    return number


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ConversionError(f"number out of range: {text}")
    return number
