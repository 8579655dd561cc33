"""The one place where Lua values become Python values and back.

Lua strings are bytes (the runtime has no encoding): text is decoded here, with a
clear error when it is not UTF-8, never by lupa behind our back. The converter
knows Lua only through the few functions the prelude hands it (``type``, a table's
identity, a table constructor and the ``json.null`` sentinel), so it can be tested
on its own and never imports ``lupa``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import ScriptCallError

__all__ = ["MAX_DEPTH", "MAX_TABLES", "ConversionError", "Converter"]

#: Conversion recurses in Python (a few frames a level, under its limit of 1000).
MAX_DEPTH = 200

#: Tables one conversion to Python may visit. A table shared n times is visited n
#: times (JSON has no sharing), so `a = {a, a}` nested 40 deep would be 2^40 visits.
MAX_TABLES = 100_000


class ConversionError(ScriptCallError):
    """A value cannot cross between Lua and Python (or JSON); the text says why."""


class Converter:
    """Converts between one Lua state's values and plain Python values.

    ``lua_type`` is Lua's ``type`` (returning bytes), ``identity`` names a table
    (equal for the same table), ``new_table`` makes an empty table and ``null`` is
    the ``json.null`` sentinel of that state.
    """

    # One per script, and thousands of scripts wait at once in a worker.
    __slots__ = ("_identity", "_new_table", "_null_id", "_tables", "_type", "null")

    def __init__(
        self,
        *,
        lua_type: Callable[[Any], bytes],
        identity: Callable[[Any], bytes],
        new_table: Callable[[], Any],
        null: Any,
    ) -> None:
        self._type = lua_type
        self._identity = identity
        self._new_table = new_table
        self.null = null
        self._null_id = identity(null)
        self._tables = 0

    def to_python(self, value: Any, depth: int = 0, seen: frozenset[bytes] = frozenset()) -> Any:
        """A Lua value as Python: strings as ``str``, sequences as lists, tables as dicts.

        ``json.null`` becomes ``None``; an empty table is an empty list. Raises
        :class:`ConversionError` for functions, userdata, cycles, mixed keys,
        NaN/infinity and strings that are not UTF-8.
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
        if depth >= MAX_DEPTH:
            raise ConversionError(f"nesting deeper than {MAX_DEPTH} levels")
        self._tables = 1 if depth == 0 else self._tables + 1
        if self._tables > MAX_TABLES:
            raise ConversionError(f"more than {MAX_TABLES} tables (shared tables count each time)")
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
        """A Python value as Lua; ``None`` inside a list or dict becomes ``json.null``.

        Only plain data crosses: ``None``, booleans, numbers, ``str``, ``bytes``
        (a binary message), lists, tuples and dicts. Anything else is a bug of
        ours and raises :class:`TypeError`: no Python object reaches a script.
        """
        if depth >= MAX_DEPTH:
            raise ConversionError(f"nesting deeper than {MAX_DEPTH} levels")
        if value is None or isinstance(value, bool | int | float | bytes):
            return value
        if isinstance(value, str):
            return _utf8(value)
        if isinstance(value, list | tuple):
            table = self._new_table()
            for index, item in enumerate(value, 1):
                table[index] = self._nested(item, depth)
            return table
        if isinstance(value, dict):
            table = self._new_table()
            for key, item in value.items():
                table[_utf8(str(key))] = self._nested(item, depth)
            return table
        raise TypeError(f"a {type(value).__name__} cannot be passed to Lua")

    def _nested(self, value: Any, depth: int) -> Any:
        return self.null if value is None else self.to_lua(value, depth + 1)


def _utf8(text: str) -> bytes:
    # JSON's \ud800 escapes make str values that UTF-8 cannot carry: a lone surrogate.
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        surrogate = ord(text[exc.start])
        raise ConversionError(
            f"string holds a lone surrogate \\u{surrogate:04x} (not valid UTF-8)"
        ) from None
