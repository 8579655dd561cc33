"""The result convention of Monsta's monitors: what a script's end means for its state.

- ``return {value = v, status = "MetricOk" | "MetricWarning" | "MetricCritical"}``
  sets the state (OK, WARNING, CRITICAL) and the value ``v``;
- any other return value (or none) is OK with that value;
- a table whose ``status`` is another string beginning with ``Metric`` is a
  mistake, not a value: UNKNOWN, with an error naming the statuses;
- an uncaught error (the limits included) is CRITICAL, with the error;
- a script that does not compile, or cannot be read, is UNKNOWN;
- ``signal(name)`` ends the script without a value: its result carries the signal
  (``RepeatPrevValue``: keep the previous value) and its state is UNKNOWN, the
  state a plugin gives when it has nothing to say.

A script's end is judged here once, into a :class:`ScriptResult`; ``wsprobe run``'s
record, ``wsprobe check --script`` and the agent all take it as it is, and say it in
the words of :meth:`ScriptResult.text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plugin import State
from .jsoncodec import compact

__all__ = [
    "REPEAT_PREVIOUS",
    "STATUSES",
    "ScriptResult",
    "of_failure",
    "of_return",
    "of_signal",
]

#: The statuses a script may return, and the state each one means.
STATUSES = {"MetricOk": State.OK, "MetricWarning": State.WARNING, "MetricCritical": State.CRITICAL}
#: The signal that asks a scheduler to keep the monitor's previous value and state.
REPEAT_PREVIOUS = "RepeatPrevValue"

_RETURNED = {state: status for status, state in STATUSES.items()}
# The value as a status line shows it: schedulers keep short lines.
_SHOWN = 200


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """How a script ended: its state, its value, why it did not end well, its signal.

    ``error`` is set when the script did not end well (its state is then never OK);
    ``signal`` is the name it ended with through ``signal(...)`` (no value then).
    """

    state: State
    value: Any = None
    error: str | None = None
    signal: str | None = None

    @property
    def status(self) -> str:
        """The state as a record's ``status`` says it: ``ok``, ``warning``, ``critical``,
        ``unknown``."""
        return self.state.name.lower()

    def text(self, name: str) -> str:
        """What every output says of script ``name``'s end: its error (as the record has
        it), the signal it ended with, or the value it returned on one line (with the
        status, unless OK)."""
        if self.error is not None:
            return self.error
        if self.signal is not None:
            return f"{name}: ended with signal {self.signal}"
        shown = _shown(self.value).replace("\n", " ")
        if len(shown) > _SHOWN:
            shown = shown[:_SHOWN] + "…"
        returned = _RETURNED.get(self.state)
        status = f" (returned {returned})" if self.state is not State.OK and returned else ""
        return f"{name}: {shown}{status}"

    def reason(self, name: str) -> str | None:
        """Why the state is not OK (:meth:`text`), ``None`` when it is."""
        return None if self.state is State.OK else self.text(name)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return compact(value)
    except ValueError:  # NaN inside a table: shown, not a crash of the judgement
        return str(value)


def of_return(result: Any) -> ScriptResult:
    """The result of a script that returned ``result``."""
    if isinstance(result, dict):
        status = result.get("status")
        if isinstance(status, str) and status in STATUSES:
            return ScriptResult(STATUSES[status], result.get("value"))
        if isinstance(status, str) and status.startswith("Metric"):
            return ScriptResult(
                State.UNKNOWN,
                result.get("value"),
                error=f'unknown status "{status}" (MetricOk, MetricWarning or MetricCritical)',
            )
    return ScriptResult(State.OK, result)


def of_failure(message: str, *, ran: bool) -> ScriptResult:
    """The result of a script that failed: CRITICAL once it ran, else UNKNOWN."""
    return ScriptResult(State.CRITICAL if ran else State.UNKNOWN, error=message)


def of_signal(name: str) -> ScriptResult:
    """The result of a script that ended with ``signal(name)``."""
    return ScriptResult(State.UNKNOWN, signal=name)
