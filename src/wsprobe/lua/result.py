"""The result convention of Monsta's monitors: what a script's end means for its state.

- ``return {value = v, status = "MetricOk" | "MetricWarning" | "MetricCritical"}``
  sets the state (``ok``, ``warning``, ``critical``) and the value ``v``;
- any other return value (or none) is ``ok`` with that value;
- a table whose ``status`` is another string beginning with ``Metric`` is a
  mistake, not a value: ``unknown``, with an error naming the statuses;
- an uncaught error (the limits included) is ``critical``, with the error;
- a script that does not compile, or cannot be read, is ``unknown``;
- ``signal(name)`` ends the script without a value: its record carries the signal
  (``RepeatPrevValue``: keep the previous value) and its state is ``unknown``, the
  state a plugin gives when it has nothing to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["REPEAT_PREVIOUS", "STATUSES", "Verdict", "of_failure", "of_return", "of_signal"]

#: The statuses a script may return, and the state each one means.
STATUSES = {"MetricOk": "ok", "MetricWarning": "warning", "MetricCritical": "critical"}
#: The signal that asks a scheduler to keep the monitor's previous value and state.
REPEAT_PREVIOUS = "RepeatPrevValue"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A script's state (``ok``, ``warning``, ``critical``, ``unknown``) and value.

    ``error`` is set when the script did not end well (``ok`` is then never the state).
    """

    status: str
    value: Any = None
    error: str | None = None
    signal: str | None = None


def of_return(result: Any) -> Verdict:
    """The verdict of a script that returned ``result``."""
    if isinstance(result, dict):
        status = result.get("status")
        if isinstance(status, str) and status in STATUSES:
            return Verdict(STATUSES[status], result.get("value"))
        if isinstance(status, str) and status.startswith("Metric"):
            return Verdict(
                "unknown",
                result.get("value"),
                error=f'unknown status "{status}" (MetricOk, MetricWarning or MetricCritical)',
            )
    return Verdict("ok", result)


def of_failure(message: str, *, ran: bool) -> Verdict:
    """The verdict of a script that failed: ``critical`` once it ran, else ``unknown``."""
    return Verdict("critical" if ran else "unknown", error=message)


def of_signal(name: str) -> Verdict:
    """The verdict of a script that ended with ``signal(name)``."""
    return Verdict("unknown", signal=name)
