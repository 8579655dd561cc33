"""Prometheus exposition of the latest results, through ``prometheus_client``.

The collector builds its metric families from the results at each scrape, so a
monitor removed by a reload is gone from the next scrape (no stale series), and
each monitor carries its own labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from .outcome import RESULTS, Outcome

__all__ = ["AgentFacts", "MonitorRow", "ResultsCollector", "probe_registry", "render"]


@dataclass(frozen=True, slots=True)
class MonitorRow:
    """One monitor at scrape time: its labels (``monitor`` included), its last outcome
    (``None`` before its first run) and its counts since the agent started, by result
    (:data:`~.outcome.RESULTS`)."""

    labels: Mapping[str, str]
    outcome: Outcome | None
    runs: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """The agent's own state at scrape time."""

    monitors: int
    in_flight: int
    reloads: Mapping[str, int]
    last_reload_ok: bool
    internal_errors: Mapping[str, int] = field(default_factory=dict)
    history_queued: int = 0
    history_dropped: int = 0


class ResultsCollector(Collector):
    """Yields the monitor families from ``rows()`` and, with ``facts``, the agent's own."""

    def __init__(
        self,
        rows: Callable[[], Iterable[MonitorRow]],
        *,
        facts: Callable[[], AgentFacts] | None = None,
        counters: bool = True,
    ) -> None:
        self._rows = rows
        self._facts = facts
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        yield from _families(list(self._rows()), counters=self._counters)
        if self._facts is not None:
            yield from _agent_families(self._facts())


def probe_registry(outcome: Outcome) -> CollectorRegistry:
    """The metrics of one ``/probe`` run: no ``monitor`` label, no counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResultsCollector(lambda: [MonitorRow({}, outcome)], counters=False))
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition the scraper asked for (OpenMetrics or text) and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def _families(rows: list[MonitorRow], *, counters: bool) -> Iterator[Metric]:
    success = GaugeMetricFamily("probe_success", "1 when the check's reply came and matched")
    duration = GaugeMetricFamily("probe_duration_seconds", "How long the check took")
    phases = GaugeMetricFamily(
        "probe_websocket_duration_seconds", "Seconds spent in each phase of the connection"
    )
    status_code = GaugeMetricFamily(
        "probe_websocket_status_code", "HTTP status of the WebSocket upgrade"
    )
    expiry = GaugeMetricFamily(
        "probe_ssl_earliest_cert_expiry", "Unix time the server's certificate expires"
    )
    state = GaugeMetricFamily("wsprobe_monitor_status", "0 ok, 1 warning, 2 critical, 3 unknown")
    value = GaugeMetricFamily("wsprobe_monitor_value", "The check's numeric result")
    last_run = GaugeMetricFamily(
        "wsprobe_monitor_last_run_timestamp_seconds", "When the last check started"
    )
    runs = CounterMetricFamily(
        "wsprobe_monitor_runs", "Checks run since the agent started, by result"
    )
    skipped = CounterMetricFamily(
        "wsprobe_monitor_skipped_runs", "Slots missed because the previous run was still going"
    )
    for row in rows:
        labels = dict(row.labels)
        if counters:
            for result in RESULTS:
                runs.add_sample(
                    "wsprobe_monitor_runs_total",
                    {**labels, "result": result},
                    row.runs.get(result, 0),
                )
            skipped.add_sample("wsprobe_monitor_skipped_runs_total", labels, row.skipped)
        outcome = row.outcome
        if outcome is None:
            continue
        success.add_sample("probe_success", labels, 1.0 if outcome.success else 0.0)
        duration.add_sample("probe_duration_seconds", labels, outcome.duration)
        for phase, seconds in outcome.timings.items():
            phases.add_sample(
                "probe_websocket_duration_seconds", {**labels, "phase": phase}, seconds
            )
        if outcome.status_code is not None:
            status_code.add_sample("probe_websocket_status_code", labels, outcome.status_code)
        if outcome.cert_expires is not None:
            expiry.add_sample("probe_ssl_earliest_cert_expiry", labels, outcome.cert_expires)
        state.add_sample("wsprobe_monitor_status", labels, int(outcome.status))
        if outcome.numeric_value is not None:
            value.add_sample("wsprobe_monitor_value", labels, outcome.numeric_value)
        last_run.add_sample("wsprobe_monitor_last_run_timestamp_seconds", labels, outcome.time)
    yield from (success, duration, phases, status_code, expiry, state, value, last_run)
    if counters:
        yield from (runs, skipped)


def _agent_families(facts: AgentFacts) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "wsprobe_agent_monitors", "Monitors this agent runs (its shard)", value=facts.monitors
    )
    yield GaugeMetricFamily(
        "wsprobe_agent_checks_in_flight", "Checks running now", value=facts.in_flight
    )
    reloads = CounterMetricFamily(
        "wsprobe_agent_config_reloads", "Configuration reloads by result", labels=["result"]
    )
    for result, count in sorted(facts.reloads.items()):
        reloads.add_metric([result], count)
    yield reloads
    yield GaugeMetricFamily(
        "wsprobe_agent_config_last_reload_successful",
        "1 when the last (re)load of the configuration was applied",
        value=1.0 if facts.last_reload_ok else 0.0,
    )
    errors = CounterMetricFamily(
        "wsprobe_agent_internal_errors",
        "Unexpected exceptions, each of which failed one unit of work, by component",
        labels=["component"],
    )
    for component, count in sorted(facts.internal_errors.items()):
        errors.add_metric([component], count)
    yield errors
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
