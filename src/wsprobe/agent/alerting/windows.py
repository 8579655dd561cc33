"""Maintenance windows: while one covers a monitor, its alerts are held back.

Times are Unix seconds; a recurring window's ``at`` is wall-clock time in its IANA
time zone, and its ``duration`` is elapsed time. On a day when the clocks jump
forward over ``at``, the window opens at the same offset from midnight as the day
before would have (``02:30`` in a skipped hour opens at ``03:30``); on a day when an
hour repeats, it opens at the first ``at``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["WEEKDAYS", "OneOff", "Weekly", "Window", "in_maintenance"]

#: Weekday names as the configuration spells them, Monday first (``date.weekday()``).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class OneOff:
    """From ``start`` (Unix seconds) for ``duration`` seconds; ``monitors`` ``None``: all."""

    start: float
    duration: float
    monitors: frozenset[str] | None = None

    def covers(self, at: float) -> bool:
        """Whether Unix time ``at`` lies in the window (start included, end not)."""
        return self.start <= at < self.start + self.duration


@dataclass(frozen=True, slots=True)
class Weekly:
    """On each of ``days`` (0 is Monday) at wall-clock ``at`` in ``timezone``, for
    ``duration`` seconds (at most a week); ``monitors`` ``None``: all."""

    days: frozenset[int]
    at: datetime.time
    duration: float
    timezone: str = "UTC"
    monitors: frozenset[str] | None = None

    def covers(self, at: float) -> bool:
        """Whether Unix time ``at`` lies in one of the window's openings."""
        zone = ZoneInfo(self.timezone)
        today = datetime.datetime.fromtimestamp(at, zone).date()
        # An opening that covers ``at`` began at most ``duration`` ago: look back that
        # many days, and one more for a start late in the day.
        back = math.ceil(self.duration / _DAY) + 1
        for offset in range(back + 1):
            day = today - datetime.timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = datetime.datetime.combine(day, self.at, tzinfo=zone).timestamp()
            if opens <= at < opens + self.duration:
                return True
        return False


Window = OneOff | Weekly


def in_maintenance(windows: Iterable[Window], monitor: str, at: float) -> bool:
    """Whether a window for ``monitor`` covers Unix time ``at``."""
    return any(
        (window.monitors is None or monitor in window.monitors) and window.covers(at)
        for window in windows
    )
