"""The alert state machine: pinned sequences, and Hypothesis against a plain model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from wsprobe.agent.alerting.config import AlertingConfig, AlertRule
from wsprobe.agent.alerting.engine import AlertState, Engine, Run
from wsprobe.agent.alerting.notice import Notice
from wsprobe.agent.alerting.windows import OneOff
from wsprobe.plugin import State

OK, WARN, CRIT, UNK = State.OK, State.WARNING, State.CRITICAL, State.UNKNOWN


def told(engine: Engine, monitor: str, states: list[State], start: float = 0.0) -> list[str]:
    """Feed ``states`` a minute apart; the notices as ``kind@minute``."""
    said = []
    for index, state in enumerate(states):
        notice = engine.observe(monitor, Run(state, start + 60.0 * index, error="down"))
        if notice is not None:
            said.append(f"{notice.kind}@{index}")
    return said


def engine_with(rule: AlertRule, **config: object) -> Engine:
    return Engine(AlertingConfig(rules={"api": rule, "gw": rule}, **config))  # type: ignore[arg-type]


def test_fires_after_the_failure_threshold_and_resolves_after_the_success_threshold() -> None:
    engine = engine_with(AlertRule(failure_threshold=3, success_threshold=2))
    states = [CRIT, CRIT, OK, CRIT, UNK, CRIT, CRIT, OK, CRIT, OK, OK, OK]
    assert told(engine, "api", states) == ["firing@5", "resolved@10"]
    state = engine.state("api")
    assert state == AlertState(phase="ok", since=600.0, started=180.0, last_state=0)


def test_warning_counts_only_when_asked() -> None:
    quiet = engine_with(AlertRule(failure_threshold=1, success_threshold=1))
    assert told(quiet, "api", [WARN, WARN, CRIT, WARN]) == ["firing@2", "resolved@3"]
    paged = engine_with(AlertRule(failure_threshold=1, success_threshold=1, on=frozenset({WARN})))
    assert told(paged, "api", [WARN, CRIT, OK]) == ["firing@0", "resolved@1"]
    notice = paged.observe("api", Run(WARN, 999.0))
    assert notice is not None
    assert notice.severity == "warning"


def test_no_resolved_when_not_asked_and_reminders_when_asked() -> None:
    engine = engine_with(AlertRule(failure_threshold=1, send_resolved=False, remind_every=120.0))
    # Still firing at minute 6 (one OK run of the two that resolve it): reminded.
    assert told(engine, "api", [CRIT] * 6 + [OK, OK, CRIT]) == [
        "firing@0",
        "reminder@2",
        "reminder@4",
        "reminder@6",
        "firing@8",
    ]


def test_repeating_the_previous_value_changes_nothing() -> None:
    engine = engine_with(AlertRule(failure_threshold=2))
    engine.observe("api", Run(CRIT, 0.0))
    before = engine.state("api")
    assert engine.observe("api", Run(CRIT, 60.0, repeat=True)) is None
    assert engine.observe("api", Run(OK, 120.0, repeat=True)) is None
    assert engine.state("api") == before


def test_a_maintenance_window_holds_notices_back_and_they_catch_up() -> None:
    window = OneOff(120.0, 300.0, frozenset({"api"}))
    engine = engine_with(
        AlertRule(failure_threshold=1, success_threshold=1), maintenance=(window,)
    )
    # Fails at minute 2, inside the window: nothing told until minute 7 (420 s).
    assert told(engine, "api", [OK, OK, CRIT, CRIT, CRIT, CRIT, CRIT, CRIT, OK]) == [
        "firing@7",
        "resolved@8",
    ]
    # An outage wholly inside a window is never told.
    engine = engine_with(
        AlertRule(failure_threshold=1, success_threshold=1), maintenance=(window,)
    )
    assert told(engine, "api", [OK, OK, CRIT, OK, OK, OK, OK, OK]) == []
    assert engine.in_maintenance("api", 200.0)
    assert not engine.in_maintenance("gw", 200.0)


def test_a_failing_parent_holds_its_child_back() -> None:
    engine = engine_with(
        AlertRule(failure_threshold=1, success_threshold=1), depends_on={"api": ("gw",)}
    )
    assert engine.observe("gw", Run(CRIT, 0.0)) is not None
    assert engine.observe("api", Run(CRIT, 1.0)) is None
    assert engine.state("api") == AlertState(
        phase="firing", since=1.0, failures=1, started=1.0, last_state=2
    )
    # The parent recovers; the child, still failing, fires at its next run.
    assert engine.observe("gw", Run(OK, 60.0)) is not None
    notice = engine.observe("api", Run(CRIT, 61.0, error="refused"))
    assert notice == Notice(
        "firing", "api", "critical", "critical", since=1.0, at=61.0, error="refused"
    )


def test_a_parent_without_alerts_still_holds_its_child() -> None:
    config = AlertingConfig(
        rules={"api": AlertRule(failure_threshold=1)}, depends_on={"api": ("gw",)}
    )
    engine = Engine(config)
    assert engine.observe("gw", Run(UNK, 0.0)) is None
    assert engine.state("gw") is None
    assert engine.observe("api", Run(CRIT, 1.0)) is None
    engine.observe("gw", Run(OK, 2.0))
    assert engine.observe("api", Run(CRIT, 3.0)) is not None


def test_states_survive_a_restart_through_json() -> None:
    engine = engine_with(AlertRule(failure_threshold=1))
    assert engine.observe("api", Run(CRIT, 0.0)) is not None
    saved = json.loads(json.dumps({n: s.as_json() for n, s in engine.states.items()}))
    again = Engine(engine.config, {n: AlertState.from_json(raw) for n, raw in saved.items()})
    assert again.observe("api", Run(CRIT, 60.0)) is None
    assert again.state("api") == AlertState(**{**saved["api"], "failures": 2})


def test_a_reload_forgets_monitors_whose_alerts_went_away() -> None:
    engine = engine_with(AlertRule(failure_threshold=1))
    engine.observe("api", Run(CRIT, 0.0))
    engine.observe("db", Run(CRIT, 0.0))
    forgotten = engine.configure(
        AlertingConfig(rules={"gw": AlertRule()}, depends_on={"gw": ("db",)})
    )
    assert forgotten == {"api"}
    assert engine.state("api") is None
    # A parent without alerts keeps its last state for its child.
    assert engine.held("gw", 1.0)


# -- Hypothesis: the engine against a plain model ------------------------------------


@dataclass
class Model:
    """Alerts recomputed from the whole list of runs, as the documentation says them."""

    rule: AlertRule
    runs: list[tuple[bool, State, float]] = field(default_factory=list)
    firing: bool = False
    told: bool = False
    severity: str = "critical"
    started: float | None = None
    last_sent: float | None = None
    last_state: State | None = None

    def run(self, state: State, at: float, held: bool) -> tuple[str, str, float] | None:
        failed = state in self.rule.on
        self.runs.append((failed, state, at))
        self.last_state = state
        streak = 0
        for was_failed, _, _ in reversed(self.runs):
            if was_failed != failed:
                break
            streak += 1
        if failed and not self.firing and streak == 1:
            self.started = at
        if self.firing:
            self.firing = failed or streak < self.rule.success_threshold
        else:
            self.firing = failed and streak >= self.rule.failure_threshold
        if held:
            return None
        if self.firing and not self.told:
            self.told, self.last_sent = True, at
            self.severity = "warning" if state is WARN else "critical"
            return ("firing", self.severity, self._since(at))
        if not self.firing and self.told:
            self.told = False
            return (
                ("resolved", self.severity, self._since(at)) if self.rule.send_resolved else None
            )
        remind = self.rule.remind_every
        if self.firing and remind and self.last_sent is not None and at - self.last_sent >= remind:
            self.last_sent = at
            return ("reminder", self.severity, self._since(at))
        return None

    def _since(self, at: float) -> float:
        return self.started if self.started is not None else at


STATES = st.sampled_from([OK, WARN, CRIT, UNK])


class AlertMachine(RuleBasedStateMachine):
    """Two monitors, ``child`` depending on ``parent``, one maintenance window."""

    @initialize(
        failure=st.integers(1, 4),
        success=st.integers(1, 4),
        remind=st.sampled_from([0.0, 60.0, 300.0]),
        send_resolved=st.booleans(),
        on=st.sets(st.sampled_from([WARN, CRIT, UNK]), min_size=1),
        window=st.tuples(st.floats(0, 5000), st.floats(1, 3000)),
        window_monitors=st.sampled_from([None, frozenset({"child"}), frozenset({"parent"})]),
    )
    def setup(
        self,
        failure: int,
        success: int,
        remind: float,
        send_resolved: bool,
        on: set[State],
        window: tuple[float, float],
        window_monitors: frozenset[str] | None,
    ) -> None:
        rule = AlertRule(
            failure_threshold=failure,
            success_threshold=success,
            remind_every=remind,
            send_resolved=send_resolved,
            on=frozenset(on),
        )
        self.window = OneOff(window[0], window[1], window_monitors)
        self.config = AlertingConfig(
            rules={"parent": rule, "child": rule},
            depends_on={"child": ("parent",)},
            maintenance=(self.window,),
        )
        self.engine = Engine(self.config)
        self.models = {"parent": Model(rule), "child": Model(rule)}
        self.now = 0.0

    @rule(
        monitor=st.sampled_from(["parent", "child"]),
        state=STATES,
        repeat=st.booleans(),
        gap=st.floats(1, 400),
    )
    def run(self, monitor: str, state: State, repeat: bool, gap: float) -> None:
        self.now += gap
        notice = self.engine.observe(monitor, Run(state, self.now, repeat=repeat))
        if repeat:
            assert notice is None
            return
        parent = self.models["parent"].last_state
        in_window = self.window.covers(self.now) and (
            self.window.monitors is None or monitor in self.window.monitors
        )
        held = in_window or (monitor == "child" and parent not in (None, OK))
        expected = self.models[monitor].run(state, self.now, held)
        got = None if notice is None else (notice.kind, notice.severity, notice.since)
        assert got == expected

    @rule()
    def restart(self) -> None:
        saved = json.dumps({name: state.as_json() for name, state in self.engine.states.items()})
        states = {name: AlertState.from_json(raw) for name, raw in json.loads(saved).items()}
        self.engine = Engine(self.config, states)

    @invariant()
    def phases_agree(self) -> None:
        if not hasattr(self, "engine"):
            return
        for name, model in self.models.items():
            state = self.engine.state(name)
            assert state is not None
            assert (state.phase == "firing") == model.firing
            assert state.told == model.told


AlertMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestAlertMachine = pytest.mark.slow(AlertMachine.TestCase)
