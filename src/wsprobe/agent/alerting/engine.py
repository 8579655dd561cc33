"""The alert state machine: each monitor's runs in, notices out. Pure: no I/O, no clock.

A monitor's alert is ``ok``, ``pending`` (failing, fewer than ``failure_threshold``
runs so far) or ``firing`` (``failure_threshold`` consecutive runs in an ``on``
state, until ``success_threshold`` consecutive runs that are not). Apart from
that, the engine keeps whether people were told: a firing notice goes out when
the alert fires, a resolved one when it stops, reminders between them; while a
notice is held back (a maintenance window, a ``depends_on`` parent whose last run
was not OK), what people were told stays as it is and catches up at the first run
after the hold lifts. A run that repeats the previous result changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ...plugin import State
from .config import MAX_THRESHOLD, AlertingConfig, AlertRule
from .notice import FIRING, REMINDER, RESOLVED, Notice
from .windows import in_maintenance

__all__ = ["FIRING_PHASE", "OK", "PENDING", "AlertState", "Engine", "Run", "step"]

OK = "ok"
PENDING = "pending"
FIRING_PHASE = "firing"
_PHASES = (OK, PENDING, FIRING_PHASE)


@dataclass(frozen=True, slots=True)
class Run:
    """What the engine needs of one run: its state, when (Unix seconds), why, its
    value, and whether the script asked to repeat the previous result."""

    state: State
    at: float
    error: str | None = None
    value: float | str | None = None
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class AlertState:
    """One monitor's alert: ``phase`` since ``since``; ``failures``/``successes`` the
    runs counted toward firing/resolving; ``started`` the first failed run of the
    outage; ``told`` whether people were told it fires (``severity`` then says how
    bad); ``last_sent`` when the last firing or reminder was decided; ``last_state``
    the latest run's state (what a child's hold looks at)."""

    phase: str = OK
    since: float | None = None
    failures: int = 0
    successes: int = 0
    started: float | None = None
    told: bool = False
    severity: str = "critical"
    last_sent: float | None = None
    last_state: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The saved form (:meth:`from_json` reads it back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AlertState:
        """Read back :meth:`as_json`; ``ValueError`` or ``TypeError`` for anything else."""
        state = cls(**raw)
        if state.phase not in _PHASES:
            raise ValueError(f"unknown phase {state.phase!r}")
        return state


def step(
    state: AlertState, rule: AlertRule, run: Run, *, held: bool, monitor: str
) -> tuple[AlertState, Notice | None]:
    """The alert after ``run``, and the notice it calls for (``None``: none)."""
    if run.repeat:
        return state, None
    failed = run.state in rule.on
    # Bounded: past any threshold, more failed runs change nothing.
    failures = min(state.failures + 1, MAX_THRESHOLD) if failed else 0
    phase, since, started = state.phase, state.since, state.started
    successes = 0
    if phase == FIRING_PHASE:
        successes = 0 if failed else state.successes + 1
        if successes >= rule.success_threshold:
            phase, since, successes = OK, run.at, 0
    elif failed:
        if state.failures == 0:
            started = run.at
        wanted = FIRING_PHASE if failures >= rule.failure_threshold else PENDING
        if wanted != phase:
            phase, since = wanted, run.at
    elif phase == PENDING:
        phase, since = OK, run.at
    new = replace(
        state,
        phase=phase,
        since=since,
        failures=failures,
        successes=successes,
        started=started,
        last_state=int(run.state),
    )
    if held:
        return new, None
    firing = phase == FIRING_PHASE
    kind = None
    if firing and not state.told:
        severity = "warning" if run.state is State.WARNING else "critical"
        new = replace(new, told=True, severity=severity, last_sent=run.at)
        kind = FIRING
    elif not firing and state.told:
        new = replace(new, told=False, last_sent=None)
        kind = RESOLVED if rule.send_resolved else None
    elif (
        firing
        and rule.remind_every > 0
        and state.last_sent is not None
        and run.at - state.last_sent >= rule.remind_every
    ):
        new = replace(new, last_sent=run.at)
        kind = REMINDER
    if kind is None:
        return new, None
    notice = Notice(
        kind=kind,
        monitor=monitor,
        state=run.state.name.lower(),
        severity=new.severity,
        since=started if started is not None else run.at,
        at=run.at,
        error=run.error,
        value=run.value,
    )
    return new, notice


class Engine:
    """Every monitor's :class:`AlertState` under one :class:`AlertingConfig`."""

    def __init__(self, config: AlertingConfig, states: Mapping[str, AlertState] | None = None):
        self.config = config
        self.states: dict[str, AlertState] = dict(states or {})

    def configure(self, config: AlertingConfig) -> set[str]:
        """Take a reloaded configuration; return the monitors forgotten: those with
        neither alerts nor children any more."""
        self.config = config
        kept = {*config.rules, *(p for parents in config.depends_on.values() for p in parents)}
        forgotten = set(self.states) - kept
        self.states = {name: s for name, s in self.states.items() if name in kept}
        return forgotten

    def held(self, monitor: str, at: float) -> bool:
        """Whether ``monitor``'s notices are held back at Unix time ``at``."""
        return self.in_maintenance(monitor, at) or any(
            self._failing(parent) for parent in self.config.depends_on.get(monitor, ())
        )

    def in_maintenance(self, monitor: str, at: float) -> bool:
        """Whether a maintenance window covers ``monitor`` at Unix time ``at``."""
        return in_maintenance(self.config.maintenance, monitor, at)

    def observe(self, monitor: str, run: Run) -> Notice | None:
        """Count ``run`` of ``monitor``; the notice it calls for, if any. A monitor
        without alerts only has its last state kept (a child may depend on it)."""
        state = self.states.get(monitor, AlertState())
        rule = self.config.rules.get(monitor)
        if rule is None:
            if not run.repeat:
                self.states[monitor] = replace(state, last_state=int(run.state))
            return None
        held = self.held(monitor, run.at)
        self.states[monitor], notice = step(state, rule, run, held=held, monitor=monitor)
        return notice

    def state(self, monitor: str) -> AlertState | None:
        """``monitor``'s alert, ``None`` when its alerts are off."""
        if monitor not in self.config.rules:
            return None
        return self.states.get(monitor, AlertState())

    def _failing(self, monitor: str) -> bool:
        state = self.states.get(monitor)
        return state is not None and state.last_state not in (None, State.OK)
