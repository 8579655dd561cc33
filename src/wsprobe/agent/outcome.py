"""One check's result, as every part of the agent sees it: history, metrics, API, page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..lua.result import REPEAT_PREVIOUS
from ..plugin import State

__all__ = ["MAX_TEXT", "PHASES", "REPEAT", "RESULTS", "Outcome", "State"]

#: The most characters of a result's value or error kept (history, page, API, log):
#: what is cut is said, ``… (N more characters)``.
MAX_TEXT = 4096

#: The connection phases reported, in order, with the names Prometheus users know.
PHASES = ("resolve", "connect", "tls", "upgrade", "reply")
#: How a run that kept the previous result (``signal("RepeatPrevValue")``) is counted.
REPEAT = "repeat"
#: Every ``result`` a run is counted under: its state, or :data:`REPEAT`.
RESULTS = (*(state.name.lower() for state in State), REPEAT)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run of a check found.

    ``time`` is when it started (Unix seconds); ``error`` says why the state is not
    OK (``None`` when it is); ``value`` is a script's result value (a number or
    text), ``None`` for declarative checks; ``timings`` maps :data:`PHASES` to
    seconds for the phases that happened; ``status_code`` is the HTTP status of the
    upgrade (101, or the refusal's); ``cert_expires`` is Unix seconds. ``signal`` is
    the name a script ended with through ``signal(...)``; after
    :meth:`~.board.Board.settle`, a ``RepeatPrevValue`` outcome carries the previous
    result's state, value and error.
    """

    time: float
    status: State
    duration: float
    value: float | str | None = None
    error: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    status_code: int | None = None
    cert_expires: float | None = None
    signal: str | None = None

    @property
    def success(self) -> bool:
        """The probe worked: the reply came and matched (a warning is a threshold)."""
        return self.status in (State.OK, State.WARNING)

    @property
    def result(self) -> str:
        """The ``result`` this run is counted under (:data:`RESULTS`)."""
        return REPEAT if self.signal == REPEAT_PREVIOUS else self.status.name.lower()

    @property
    def numeric_value(self) -> float | None:
        """``value`` when it is a number."""
        value = self.value
        return float(value) if isinstance(value, int | float) else None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record (the API's shape)."""
        return {
            "time": round(self.time, 6),
            "status": self.status.name.lower(),
            "value": self.value,
            "error": self.error,
            "duration": round(self.duration, 6),
            "timings": {name: round(value, 6) for name, value in self.timings.items()},
            "status_code": self.status_code,
            "cert_expires": self.cert_expires,
        }
