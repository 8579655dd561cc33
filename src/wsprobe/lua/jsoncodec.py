"""The ``json`` module of scripts: compact, deterministic JSON of Lua values.

Encoding goes through :class:`~.convert.Converter` (so the rules for tables are the
same as everywhere a Lua value reaches Python); every failure is a
:class:`~wsprobe.errors.ScriptCallError` whose text a script gets as its error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import ScriptCallError

# The JSON text json.encode gives, the store keeps and the records show: one place.
from ..services.jsontext import encode as compact
from .convert import MAX_DEPTH, ConversionError, Converter

__all__ = ["compact", "decode", "encode"]

_INT64 = (-(2**63), 2**63 - 1)


def encode(converter: Converter, value: Any) -> str:
    """``json.encode``: compact, keys sorted, UTF-8 kept, NaN and infinity refused."""
    try:
        document = converter.to_python(value)
    except ConversionError as exc:
        raise ScriptCallError(f"json.encode: {exc}") from None
    except RecursionError:
        raise ScriptCallError(f"json.encode: nesting deeper than {MAX_DEPTH} levels") from None
    return compact(document)


def decode(converter: Converter, text: bytes) -> Any:
    """``json.decode``: ``null`` inside becomes ``json.null``, integers stay integers."""
    try:
        document = json.loads(
            text, parse_constant=_reject_constant, parse_int=_lua_integer, parse_float=_finite
        )
        return converter.to_lua(document)
    except ConversionError as exc:
        raise ScriptCallError(f"json.decode: {exc}") from None
    except json.JSONDecodeError as exc:
        reason = exc.msg[:1].lower() + exc.msg[1:]
        where = f"line {exc.lineno} column {exc.colno}"
        raise ScriptCallError(f"json.decode: invalid JSON: {reason} at {where}") from None
    except UnicodeDecodeError:
        raise ScriptCallError("json.decode: text is not valid UTF-8") from None
    except RecursionError:
        raise ScriptCallError(f"json.decode: nesting deeper than {MAX_DEPTH} levels") from None


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
