"""The result convention judged once, and the words every output says it in."""

from __future__ import annotations

from typing import Any

import pytest

from wsprobe.lua.result import ScriptResult, of_failure, of_return, of_signal
from wsprobe.plugin import State

# (how the script ended, state, text, reason)
ENDS: list[tuple[ScriptResult, State, str, str | None]] = [
    (of_return(42), State.OK, "m.lua: 42", None),
    (of_return(None), State.OK, "m.lua: null", None),
    (of_return("a\nb"), State.OK, "m.lua: a b", None),
    (of_return("x" * 300), State.OK, "m.lua: " + "x" * 200 + "…", None),
    (
        of_return({"status": "MetricWarning", "value": 3}),
        State.WARNING,
        "m.lua: 3 (returned MetricWarning)",
        "m.lua: 3 (returned MetricWarning)",
    ),
    (
        of_return({"status": "MetricCritical", "value": {"b": 1, "a": "é"}}),
        State.CRITICAL,
        'm.lua: {"a":"é","b":1} (returned MetricCritical)',
        'm.lua: {"a":"é","b":1} (returned MetricCritical)',
    ),
    (of_return({"status": "MetricOk", "value": 1}), State.OK, "m.lua: 1", None),
    (
        of_return({"status": "MetricBogus", "value": 1}),
        State.UNKNOWN,
        'unknown status "MetricBogus" (MetricOk, MetricWarning or MetricCritical)',
        'unknown status "MetricBogus" (MetricOk, MetricWarning or MetricCritical)',
    ),
    (of_return({"status": "Fine"}), State.OK, 'm.lua: {"status":"Fine"}', None),
    (
        of_failure("m.lua:1: e1\ne2", ran=True),
        State.CRITICAL,
        "m.lua:1: e1\ne2",
        "m.lua:1: e1\ne2",
    ),
    (
        of_failure("m.lua:1: syntax", ran=False),
        State.UNKNOWN,
        "m.lua:1: syntax",
        "m.lua:1: syntax",
    ),
    (
        of_signal("RepeatPrevValue"),
        State.UNKNOWN,
        "m.lua: ended with signal RepeatPrevValue",
        "m.lua: ended with signal RepeatPrevValue",
    ),
]


@pytest.mark.parametrize(("result", "state", "text", "reason"), ENDS)
def test_each_end_has_one_state_and_one_text(
    result: ScriptResult, state: State, text: str, reason: str | None
) -> None:
    assert (result.state, result.text("m.lua"), result.reason("m.lua")) == (state, text, reason)
    assert result.status == state.name.lower()


@pytest.mark.parametrize("value", [{"x": float("nan")}, [float("inf")]])
def test_a_value_json_cannot_hold_is_still_said(value: Any) -> None:
    assert of_return(value).text("m.lua").startswith("m.lua: ")
