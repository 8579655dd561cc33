"""What every part of the agent's configuration is read with: the error that names a
field, durations, and the checks of mappings and their fields."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..errors import Error

__all__ = ["ConfigError", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d{1,15}(?:\.\d{1,15})?)(ms|s|m|h|d)")


class ConfigError(Error):
    """The configuration is wrong; the message names the field: ``monitors[2].interval: …``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where = where
        self.reason = reason


def parse_duration(value: Any) -> float:
    """``30s``, ``1m``, ``500ms``, ``2h``, ``7d``, or a number of seconds; else ``ValueError``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 30s, got {_shown(value)}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"expected a positive duration, got {_shown(value)}")
    return seconds


def _duration(where: str, value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where or "(top level)", f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(where or "(top level)", f"keys must be text, got {_shown(key)}")
    return value


def _known_fields(where: str, entry: Mapping[str, Any], known: frozenset[str]) -> None:
    for key in entry:
        if key not in known:
            raise ConfigError(f"{where}.{key}" if where else key, "unknown field")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return "nothing" if value is None else _shown(value)


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _shown(value: Any) -> str:
    # One line, and short: a message quotes what was wrong, not all of it.
    try:
        shown = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        shown = repr(value)
    return _cut(shown, 100)
