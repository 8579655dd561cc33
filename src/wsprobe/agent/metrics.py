"""Prometheus exposition of the latest results.

A monitor's sample lines are made when its result or its counts change
(:class:`MonitorSeries`); a scrape joins them family by family under the family's
``# HELP`` and ``# TYPE`` lines, so its cost is a join, not an encoding of every
sample. The lines are exactly what ``prometheus_client``'s encoders write for the same
samples (values through its ``floatToGoString``, label values escaped as its
encoders escape them), and prometheus_client itself writes the headers, the agent's
own families and the process's. A monitor removed by a reload is gone from the next
scrape (no stale series), and each monitor carries its own labels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from .outcome import PHASES, RESULTS, Outcome

__all__ = [
    "AgentCollector",
    "AgentFacts",
    "MonitorSeries",
    "exposition",
    "joined",
    "probe_exposition",
]

# The monitor families, in the order of a scrape: (name, type, help). The first
# ``_OUTCOME_FAMILIES`` come from the last outcome (all ``/probe`` shows), then the
# counters, then the two a scrape reads from the alerts.
_FAMILIES = (
    ("probe_success", "gauge", "1 when the check's reply came and matched"),
    ("probe_duration_seconds", "gauge", "How long the check took"),
    (
        "probe_websocket_duration_seconds",
        "gauge",
        "Seconds spent in each phase of the connection",
    ),
    ("probe_websocket_status_code", "gauge", "HTTP status of the WebSocket upgrade"),
    ("probe_ssl_earliest_cert_expiry", "gauge", "Unix time the server's certificate expires"),
    ("wsprobe_monitor_status", "gauge", "0 ok, 1 warning, 2 critical, 3 unknown"),
    ("wsprobe_monitor_value", "gauge", "The check's numeric result"),
    ("wsprobe_monitor_last_run_timestamp_seconds", "gauge", "When the last check started"),
    ("wsprobe_monitor_runs", "counter", "Checks run since the agent started, by result"),
    (
        "wsprobe_monitor_skipped_runs",
        "counter",
        "Slots missed because the previous run was still going",
    ),
    (
        "wsprobe_monitor_in_maintenance",
        "gauge",
        "1 while a maintenance window holds its alerts back",
    ),
    ("wsprobe_monitor_alert_firing", "gauge", "1 while its alert fires (monitors with alerts)"),
)
_OUTCOME_FAMILIES = 8
#: A sample's value as prometheus_client's encoders write it (its function, untyped).
_number: Callable[[float], str] = floatToGoString
_ESCAPED = str.maketrans({"\\": "\\\\", "\n": "\\n", '"': '\\"'})
# The escapings (as prometheus_client names them) under which a metric or label name
# of the legacy character set, as all of ours are, is written as it is: the lines
# made once serve them. Another (``dots``; ``values`` in OpenMetrics) goes through
# prometheus_client's encoder.
_AS_IS = {
    False: frozenset({openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8, openmetrics.VALUES}),
    True: frozenset({openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8}),
}
_OPENMETRICS = "application/openmetrics-text"


def _labels_text(items: Iterable[tuple[str, str]]) -> str:
    """``{name="value",...}`` sorted by name, as prometheus_client writes labels."""
    pairs = ",".join(f'{name}="{value.translate(_ESCAPED)}"' for name, value in sorted(items))
    return f"{{{pairs}}}" if pairs else ""


class MonitorSeries:
    """One monitor's sample lines: :meth:`update` makes them from its last outcome and
    its counts; :meth:`row` adds what a scrape reads from the alerts. ``labels`` are
    the monitor's (``monitor`` included), names of the legacy character set
    (``[A-Za-z_][A-Za-z0-9_]*``), values any text."""

    __slots__ = ("_base", "_by_phase", "_by_result", "_items", "lines")

    def __init__(self, labels: Mapping[str, str]) -> None:
        self._items = tuple(labels.items())
        self._base = _labels_text(self._items)
        self._by_result = tuple(self._with("result", result) for result in RESULTS)
        self._by_phase = {phase: self._with("phase", phase) for phase in PHASES}
        #: The sample lines of each family but the last two (:data:`_FAMILIES`).
        self.lines: tuple[str, ...] = ("",) * (len(_FAMILIES) - 2)

    def update(self, outcome: Outcome | None, runs: Mapping[str, int], skipped: int) -> None:
        """Make the lines of the last outcome (none before the first run) and the counts."""
        base = self._base
        counts = "".join(
            f"wsprobe_monitor_runs_total{labels} {_number(runs.get(result, 0))}\n"
            for result, labels in zip(RESULTS, self._by_result, strict=True)
        )
        skips = f"wsprobe_monitor_skipped_runs_total{base} {_number(skipped)}\n"
        self.lines = (*self.outcome_lines(outcome), counts, skips)

    def outcome_lines(self, outcome: Outcome | None) -> tuple[str, ...]:
        """The lines of the outcome families, one text per family (empty when absent)."""
        if outcome is None:
            return ("",) * _OUTCOME_FAMILIES
        base, by_phase = self._base, self._by_phase
        phases = "".join(
            f"probe_websocket_duration_seconds{by_phase.get(phase) or self._with('phase', phase)}"
            f" {_number(seconds)}\n"
            for phase, seconds in outcome.timings.items()
        )
        code, expires, value = outcome.status_code, outcome.cert_expires, outcome.numeric_value
        return (
            f"probe_success{base} {'1.0' if outcome.success else '0.0'}\n",
            f"probe_duration_seconds{base} {_number(outcome.duration)}\n",
            phases,
            "" if code is None else f"probe_websocket_status_code{base} {_number(code)}\n",
            ""
            if expires is None
            else f"probe_ssl_earliest_cert_expiry{base} {_number(expires)}\n",
            f"wsprobe_monitor_status{base} {_number(int(outcome.status))}\n",
            "" if value is None else f"wsprobe_monitor_value{base} {_number(value)}\n",
            f"wsprobe_monitor_last_run_timestamp_seconds{base} {_number(outcome.time)}\n",
        )

    def _with(self, name: str, value: str) -> str:
        return _labels_text((*self._items, (name, value)))

    def row(self, maintenance: bool, firing: bool | None) -> tuple[str, ...]:
        """Every family's lines at a scrape: whether a maintenance window covers the
        monitor, whether its alert fires (``None``: its alerts are off)."""
        base = self._base
        return (
            *self.lines,
            f"wsprobe_monitor_in_maintenance{base} {'1.0' if maintenance else '0.0'}\n",
            ""
            if firing is None
            else f"wsprobe_monitor_alert_firing{base} {'1.0' if firing else '0.0'}\n",
        )


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """The agent's own state at scrape time; ``notifications`` by ``(notifier,
    result)``, result ``sent`` or ``failed``; ``queued`` the notifications waiting."""

    monitors: int
    in_flight: int
    reloads: Mapping[str, int]
    last_reload_ok: bool
    internal_errors: Mapping[str, int] = field(default_factory=dict)
    history_queued: int = 0
    history_dropped: int = 0
    notifications: Mapping[tuple[str, str], int] = field(default_factory=dict)
    queued: int = 0


def exposition(
    rows: Sequence[Sequence[str]], own: CollectorRegistry, accept: str | None
) -> tuple[bytes, str]:
    """``/metrics``: the monitors' rows (:meth:`MonitorSeries.row`), then the families
    of ``own`` (the agent's, the process's), in the format the scraper asked for
    (OpenMetrics or text), and its content type."""
    return _expose(rows, len(_FAMILIES), own, accept)


def probe_exposition(outcome: Outcome, accept: str | None) -> tuple[bytes, str]:
    """The metrics of one ``/probe`` run: no ``monitor`` label, no counters."""
    rows = [MonitorSeries({}).outcome_lines(outcome)]
    return _expose(rows, _OUTCOME_FAMILIES, CollectorRegistry(auto_describe=False), accept)


def joined(accept: str | None) -> bool:
    """Whether the format ``accept`` asks for is the lines joined (a few milliseconds
    for a thousand monitors), not encoded again by prometheus_client (a slow path for
    escapings that rename: better on a thread)."""
    return _as_is(_encoder(accept)[1])


def _as_is(content_type: str) -> bool:
    _, said, escaping = content_type.rpartition("; escaping=")
    is_openmetrics = content_type.startswith(_OPENMETRICS)
    return (escaping if said else openmetrics.UNDERSCORES) in _AS_IS[is_openmetrics]


def _expose(
    rows: Sequence[Sequence[str]], families: int, own: CollectorRegistry, accept: str | None
) -> tuple[bytes, str]:
    encoder, content_type = _encoder(accept)
    if _as_is(content_type):
        text = _join(rows, families, openmetrics=content_type.startswith(_OPENMETRICS))
        return text.encode() + encoder(own), content_type
    # Names this escaping changes: prometheus_client encodes the same samples, read
    # back from the text format.
    parsed = list(text_string_to_metric_families(_join(rows, families, openmetrics=False)))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(parsed, own))
    return encoder(registry), content_type


def _encoder(accept: str | None) -> tuple[Callable[[CollectorRegistry], bytes], str]:
    try:
        return choose_encoder(accept or "")
    except (TypeError, ValueError):  # a version it cannot compare: the plain format
        return generate_latest, choose_encoder("")[1]


def _join(rows: Sequence[Sequence[str]], families: int, *, openmetrics: bool) -> str:
    parts: list[str] = []
    for index, header in enumerate(_headers(openmetrics)[:families]):
        parts.append(header)
        parts.extend(row[index] for row in rows)
    return "".join(parts)


@functools.cache
def _headers(is_openmetrics: bool) -> tuple[str, ...]:
    """Each monitor family's ``# HELP`` and ``# TYPE`` lines, as prometheus_client's
    encoder of the format writes them (a counter's name in the text format ends in
    ``_total``)."""
    encode = openmetrics.generate_latest if is_openmetrics else generate_latest
    headers = []
    for name, kind, documentation in _FAMILIES:
        family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
            name, documentation
        )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families([family], None))
        headers.append(encode(registry).decode().removesuffix("# EOF\n"))
    return tuple(headers)


class _Families(Collector):
    """Families already made, then those of ``own``."""

    def __init__(self, families: list[Metric], own: CollectorRegistry | None) -> None:
        self._families = families
        self._own = own

    def collect(self) -> Iterator[Metric]:
        yield from self._families
        if self._own is not None:
            yield from self._own.collect()


class AgentCollector(Collector):
    """The agent's own families, from its state at a scrape."""

    def __init__(self, facts: AgentFacts) -> None:
        self._facts = facts

    def collect(self) -> Iterator[Metric]:
        return _agent_families(self._facts)


def _counts(name: str, documentation: str, label: str, counts: Mapping[str, float]) -> Metric:
    """A counter family with one sample per ``label`` value, in the values' order."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def _agent_families(facts: AgentFacts) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "wsprobe_agent_monitors", "Monitors this agent runs (its shard)", value=facts.monitors
    )
    yield GaugeMetricFamily(
        "wsprobe_agent_checks_in_flight", "Checks running now", value=facts.in_flight
    )
    yield _counts(
        "wsprobe_agent_config_reloads", "Configuration reloads by result", "result", facts.reloads
    )
    yield GaugeMetricFamily(
        "wsprobe_agent_config_last_reload_successful",
        "1 when the last (re)load of the configuration was applied",
        value=1.0 if facts.last_reload_ok else 0.0,
    )
    yield _counts(
        "wsprobe_agent_internal_errors",
        "Unexpected exceptions, each of which failed one unit of work, by component",
        "component",
        facts.internal_errors,
    )
    yield GaugeMetricFamily(
        "wsprobe_history_queued_results",
        "Results waiting to be written to the history",
        value=facts.history_queued,
    )
    yield CounterMetricFamily(
        "wsprobe_history_dropped_results",
        "Results lost because the queue of results waiting to be written was full",
        value=facts.history_dropped,
    )
    notifications = CounterMetricFamily(
        "wsprobe_notifications",
        "Notifications by notifier and result (sent, or a failed attempt)",
        labels=["notifier", "result"],
    )
    for (notifier, result), count in sorted(facts.notifications.items()):
        notifications.add_metric([notifier, result], count)
    yield notifications
    yield GaugeMetricFamily(
        "wsprobe_notifications_queued",
        "Notifications waiting to be sent (the outbox)",
        value=facts.queued,
    )
