"""A script's result as a monitor state: the Monsta convention ``{value=..., status=...}``.

Kept apart because the runner will learn the convention itself; then this maps its
answer instead of reading the table.
"""

from __future__ import annotations

from typing import Any

from ..cli.plugin import State

__all__ = ["script_state"]

_STATUSES = {
    "MetricOk": State.OK,
    "MetricWarning": State.WARNING,
    "MetricCritical": State.CRITICAL,
}


def script_state(result: Any) -> tuple[State, Any, str | None]:
    """``(state, value, error)`` for a script that returned ``result``.

    A table with a ``status`` key follows the convention (an unknown status is
    UNKNOWN, saying so); anything else is OK with the result as the value.
    """
    if isinstance(result, dict) and "status" in result:
        status = result["status"]
        value = result.get("value")
        if status in _STATUSES:
            state = _STATUSES[status]
            error = None if state is State.OK else f"the script returned {status}"
            return state, value, error
        return State.UNKNOWN, value, f"the script returned an unknown status {status!r}"
    return State.OK, result, None
