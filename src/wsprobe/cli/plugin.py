"""The judgement of ``wsprobe check``: Monitoring Plugins states, ranges and perfdata.

Follows the Monitoring Plugins Development Guidelines: exit 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN; thresholds in Nagios range syntax; one status line
``WEBSOCKET STATE - text | perfdata``.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ..errors import Error, NoResponse
from ..models import Result

__all__ = ["Expectations", "Range", "State", "Verdict", "judge", "judge_error"]


class State(IntEnum):
    """Plugin states; the value is the exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


# When several things are wrong, the worst one names the state.
_SEVERITY = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class Range:
    """A Nagios threshold range: ``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``.

    A value *alerts* when it lies outside ``start..end`` (inside, with ``@``).
    """

    text: str
    start: float
    end: float
    inside: bool

    @classmethod
    def parse(cls, text: str) -> Range:
        """Parse ``text`` or raise :class:`ValueError` with a one-line reason."""
        body = text[1:] if text.startswith("@") else text
        low, sep, high = body.partition(":")
        try:
            if not sep:
                start, end = 0.0, float(low)
            else:
                start = float("-inf") if low == "~" else float(low or 0)
                end = float(high) if high else float("inf")
        except ValueError:
            raise ValueError(f"invalid threshold range {text!r}") from None
        if math.isnan(start) or math.isnan(end):
            raise ValueError(f"invalid threshold range {text!r}: not a number")
        if start > end:
            raise ValueError(f"invalid threshold range {text!r}: start is above end")
        return cls(text=text, start=start, end=end, inside=text.startswith("@"))

    def alerts(self, value: float) -> bool:
        """True when ``value`` should raise this range's state."""
        within = self.start <= value <= self.end
        return within if self.inside else not within


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a healthy reply looks like, and the thresholds of a check."""

    contains: str | None = None
    regex: re.Pattern[str] | None = None
    json_fields: tuple[tuple[str, Any], ...] = ()
    warning: Range | None = None
    critical: Range | None = None
    cert_warn_days: int | None = None
    cert_crit_days: int | None = None

    @staticmethod
    def parse_json_field(text: str) -> tuple[str, Any]:
        """``PATH=VALUE`` with VALUE as JSON when it parses, else as a string."""
        path, sep, raw = text.partition("=")
        if not sep or not path:
            raise ValueError(f"--expect-json wants PATH=VALUE, got {text!r}")
        try:
            return path, json.loads(raw)
        except ValueError:
            return path, raw


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check: its state, the status line's text and perfdata."""

    state: State
    text: str
    perfdata: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The plugin's first output line."""
        perf = f" | {' '.join(self.perfdata)}" if self.perfdata else ""
        return f"WEBSOCKET {self.state.name} - {self.text}{perf}"


def judge(result: Result, expect: Expectations, now: datetime.datetime) -> Verdict:
    """Judge a reply that arrived: content first, then certificate, then time."""
    perfdata = _perfdata(result, expect)
    mismatch = _mismatch(result.reply, expect)
    if mismatch is not None:
        return Verdict(State.CRITICAL, mismatch, perfdata)
    total = result.timings.total
    alerts: list[tuple[State, str]] = []
    if expect.critical is not None and expect.critical.alerts(total):
        alerts.append((State.CRITICAL, f"reply in {total:.3f}s (critical {expect.critical.text})"))
    elif expect.warning is not None and expect.warning.alerts(total):
        alerts.append((State.WARNING, f"reply in {total:.3f}s (warning {expect.warning.text})"))
    cert = _certificate(result, expect, now)
    if cert is not None:
        alerts.append(cert)
    if not alerts:
        return Verdict(State.OK, f"reply in {total:.3f}s", perfdata)
    alerts.sort(key=lambda alert: _SEVERITY[alert[0]], reverse=True)
    return Verdict(alerts[0][0], "; ".join(text for _, text in alerts), perfdata)


def judge_error(error: Error) -> Verdict:
    """A call that failed is CRITICAL, with exactly what happened."""
    if isinstance(error, NoResponse):
        return Verdict(State.CRITICAL, error.describe())
    return Verdict(State.CRITICAL, str(error))


def _mismatch(reply: str, expect: Expectations) -> str | None:
    shown = _excerpt(reply)
    if expect.contains is not None and expect.contains not in reply:
        return f"reply does not contain {json.dumps(expect.contains)}: {shown}"
    if expect.regex is not None and not expect.regex.search(reply):
        return f"reply does not match /{expect.regex.pattern}/: {shown}"
    if not expect.json_fields:
        return None
    try:
        document = json.loads(reply)
    except ValueError:
        return f"reply is not JSON: {shown}"
    for path, wanted in expect.json_fields:
        found, value = _lookup(document, path)
        if not found:
            return f"reply has no JSON field {path}: {shown}"
        # 1 == True in Python, but a JSON number is not a JSON boolean.
        if value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
            return (
                f"JSON field {path} is {json.dumps(value, ensure_ascii=False)}, "
                f"expected {json.dumps(wanted, ensure_ascii=False)}"
            )
    return None


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    value = document
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False, None
    return True, value


def _certificate(
    result: Result, expect: Expectations, now: datetime.datetime
) -> tuple[State, str] | None:
    if expect.cert_warn_days is None and expect.cert_crit_days is None:
        return None
    if result.cert_expires is None:
        return State.UNKNOWN, "certificate expiry unknown (not wss://, or --insecure)"
    days = (result.cert_expires - now).total_seconds() / 86400
    when = f"certificate expires in {days:.0f} days ({result.cert_expires:%Y-%m-%d})"
    if expect.cert_crit_days is not None and days < expect.cert_crit_days:
        return State.CRITICAL, when
    if expect.cert_warn_days is not None and days < expect.cert_warn_days:
        return State.WARNING, when
    return None


def _perfdata(result: Result, expect: Expectations) -> list[str]:
    timings = result.timings
    warn = expect.warning.text if expect.warning else ""
    crit = expect.critical.text if expect.critical else ""
    perf = [f"time={timings.total:.6f}s;{warn};{crit};0"]
    phases = [
        ("dns", timings.dns),
        ("connect", timings.connect),
        ("tls", timings.tls),
        ("upgrade", timings.upgrade),
        ("reply", timings.reply),
    ]
    perf += [f"{name}={value:.6f}s;;;0" for name, value in phases if value is not None]
    return perf


def _excerpt(text: str, limit: int = 80) -> str:
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)
