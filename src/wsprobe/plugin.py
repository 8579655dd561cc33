"""The judgement of ``wsprobe check``: Monitoring Plugins states, ranges and perfdata.

Follows the Monitoring Plugins Development Guidelines: exit 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN; thresholds in Nagios range syntax; one status line
``WEBSOCKET STATE - text | perfdata``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol, cast

from .errors import Error, InvalidOption, NoResponse, one_line
from .models import Result, Timings

# `json` and `datetime` are imported where a check needs them (a JSON expectation, a
# reply to quote, a certificate to date): a plain `wsprobe check` process skips them.
if TYPE_CHECKING:
    import datetime

__all__ = [
    "TOP_LEVEL",
    "Expectations",
    "Pattern",
    "Range",
    "State",
    "Verdict",
    "compile_regex",
    "judge",
    "judge_error",
    "timing_perfdata",
    "value_perfdata",
]


class State(IntEnum):
    """Plugin states; the value is the exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @classmethod
    def of(cls, status: str) -> State:
        """The state a record's ``status`` names (``"ok"``, ``"warning"``,
        ``"critical"``, ``"unknown"``); raises :class:`KeyError` for any other text."""
        return cls[status.upper()]


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


class Pattern(Protocol):
    """A compiled ``--expect-regex``: RE2's, which runs in time linear in the reply."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object: ...

    def fullmatch(self, text: str) -> object: ...


def compile_regex(text: str) -> Pattern:
    """Compile ``--expect-regex`` with RE2 (no backtracking: ``(a*)*b`` cannot hang).

    RE2 has no backreferences or lookaround; such a pattern, like any invalid one,
    raises :class:`~wsprobe.errors.InvalidOption` naming the option.
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own copy of the error on stderr
    try:
        return cast(Pattern, re2.compile(text, options=options))
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args else str(exc)
        raise InvalidOption("--expect-regex", reason) from None


#: The path of ``--expect-json`` that names the whole reply rather than a field.
TOP_LEVEL = "."


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a healthy reply looks like, and the thresholds of a check."""

    contains: str | None = None
    regex: Pattern | None = None
    json_fields: tuple[tuple[str, Any], ...] = ()
    warning: Range | None = None
    critical: Range | None = None
    cert_warn_days: int | None = None
    cert_crit_days: int | None = None

    @staticmethod
    def parse_json_field(text: str) -> tuple[str, Any]:
        """``PATH=VALUE`` with VALUE as JSON when it parses, else as a string.

        PATH is dotted (``a.b.0``); ``.`` alone is the whole reply (``.=42``).
        """
        path, sep, raw = text.partition("=")
        if not sep or not path:
            raise ValueError(f"--expect-json wants PATH=VALUE, got {_quoted(text)}")
        try:
            import json

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
        """The plugin's first output line: the text made safe for it (no ``|``, which
        starts the perfdata, and no line break), cut to a length schedulers keep."""
        text = one_line(self.text).replace("|", "¦")
        if len(text) > _MAX_TEXT:
            text = text[: _MAX_TEXT - 1] + "…"
        perf = f" | {' '.join(self.perfdata)}" if self.perfdata else ""
        return f"WEBSOCKET {self.state.name} - {text}{perf}"


# Nagios keeps 4 KiB of a plugin's output: the status text stays well within it.
_MAX_TEXT = 1000
# Any value a message quotes (the reply, a JSON field) is cut to this many characters.
_MAX_VALUE = 80


def judge(result: Result, expect: Expectations, now: datetime.datetime | None = None) -> Verdict:
    """Judge a reply that arrived: every failing condition is listed, the worst first
    (content, then certificate, then time, in that order within one state).
    ``now`` dates the certificate (default: the current time)."""
    perfdata = _perfdata(result, expect)
    alerts = [(State.CRITICAL, text) for text in _mismatches(result.reply, expect)]
    cert = _certificate(result, expect, now)
    if cert is not None:
        alerts.append(cert)
    total = result.timings.total
    if expect.critical is not None and expect.critical.alerts(total):
        alerts.append((State.CRITICAL, f"reply in {total:.3f}s (critical {expect.critical.text})"))
    elif expect.warning is not None and expect.warning.alerts(total):
        alerts.append((State.WARNING, f"reply in {total:.3f}s (warning {expect.warning.text})"))
    if not alerts:
        return Verdict(State.OK, f"reply in {total:.3f}s", perfdata)
    alerts.sort(key=lambda alert: _SEVERITY[alert[0]], reverse=True)
    return Verdict(alerts[0][0], "; ".join(text for _, text in alerts), perfdata)


def judge_error(error: Error) -> Verdict:
    """A call that failed is CRITICAL, with exactly what happened."""
    if isinstance(error, NoResponse):
        return Verdict(State.CRITICAL, error.describe())
    return Verdict(State.CRITICAL, str(error))


def _mismatches(reply: str, expect: Expectations) -> list[str]:
    found: list[str] = []
    if expect.contains is not None and expect.contains not in reply:
        found.append(f"reply does not contain {_quoted(expect.contains)}: {_quoted(reply)}")
    if expect.regex is not None and not expect.regex.search(reply):
        found.append(f"reply does not match /{_cut(expect.regex.pattern)}/: {_quoted(reply)}")
    if not expect.json_fields:
        return found
    import json

    shown = _quoted(reply)
    try:
        document = json.loads(reply)
    except ValueError:
        return [*found, f"reply is not JSON: {shown}"]
    except RecursionError:
        # Python's own bound on nesting (about a thousand levels), met in C code.
        return [*found, f"reply is JSON nested too deeply to judge: {shown}"]
    try:
        return found + _json_mismatches(document, expect, shown)
    except RecursionError:
        return [*found, f"reply is JSON nested too deeply to judge: {shown}"]


def _json_mismatches(document: Any, expect: Expectations, shown: str) -> list[str]:
    found: list[str] = []
    for path, wanted in expect.json_fields:
        present, value = _lookup(document, path)
        if not present:
            found.append(f"reply has no JSON field {_cut(path)}: {shown}")
        # 1 == True in Python, but a JSON number is not a JSON boolean.
        elif value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
            name = "reply" if path == TOP_LEVEL else f"JSON field {_cut(path)}"
            found.append(f"{name} is {_json(value)}, expected {_json(wanted)}")
    return found


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    value = document
    if path == TOP_LEVEL:
        return True, value
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isascii() and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False, None
    return True, value


def _certificate(
    result: Result, expect: Expectations, now: datetime.datetime | None
) -> tuple[State, str] | None:
    if expect.cert_warn_days is None and expect.cert_crit_days is None:
        return None
    if result.cert_expires is None:
        return State.UNKNOWN, "certificate expiry unknown (not wss://, or --insecure)"
    if now is None:
        import datetime

        now = datetime.datetime.now(datetime.UTC)
    days = (result.cert_expires - now).total_seconds() / 86400
    when = f"certificate expires in {days:.0f} days ({result.cert_expires:%Y-%m-%d})"
    if expect.cert_crit_days is not None and days < expect.cert_crit_days:
        return State.CRITICAL, when
    if expect.cert_warn_days is not None and days < expect.cert_warn_days:
        return State.WARNING, when
    return None


def _perfdata(result: Result, expect: Expectations) -> list[str]:
    warn = expect.warning.text if expect.warning else ""
    crit = expect.critical.text if expect.critical else ""
    return timing_perfdata(result.timings, warning=warn, critical=crit)


def timing_perfdata(
    timings: Timings, *, prefix: str = "", warning: str = "", critical: str = ""
) -> list[str]:
    """Perfdata of one call's timings: ``time`` (the total, with the thresholds) and
    each phase that happened, in seconds; every label starts with ``prefix``."""
    perf = [f"{prefix}time={timings.total:.6f}s;{warning};{critical};0"]
    phases = [
        ("dns", timings.dns),
        ("connect", timings.connect),
        ("tls", timings.tls),
        ("upgrade", timings.upgrade),
        ("reply", timings.reply),
    ]
    perf += [f"{prefix}{name}={value:.6f}s;;;0" for name, value in phases if value is not None]
    return perf


def value_perfdata(value: Any) -> list[str]:
    """Perfdata of a value: ``value=N`` for a number; each numeric field of a table,
    by its name."""
    if _numeric(value):
        return [f"value={value}"]
    if isinstance(value, dict):
        return [f"{_label(name)}={value[name]}" for name in sorted(value) if _numeric(value[name])]
    return []


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label(name: str) -> str:
    # Monitoring Plugins: labels with spaces or = are quoted, ' doubled.
    if any(c in name for c in " ='"):
        return "'" + name.replace("'", "''") + "'"
    return name


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _quoted(text: str) -> str:
    import json

    return json.dumps(_cut(text), ensure_ascii=False)


def _json(value: Any) -> str:
    import json

    return _cut(json.dumps(value, ensure_ascii=False))
