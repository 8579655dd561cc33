"""``/metrics`` and ``/probe``'s exposition: the lines made once per change are, byte for
byte, what prometheus_client's encoders write for the same samples in every format and
escaping a scraper can ask for; the board makes them anew at each change."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from wsprobe.agent.board import Board
from wsprobe.agent.config import Monitor, Probe
from wsprobe.agent.metrics import (
    AgentCollector,
    AgentFacts,
    MonitorSeries,
    exposition,
    joined,
    probe_exposition,
)
from wsprobe.agent.outcome import PHASES, RESULTS, Outcome, State
from wsprobe.options import Options

#: What scrapers send: Prometheus 2 and 3, each format with each escaping, none at all.
ACCEPTS = [
    None,
    "",
    "text/plain;version=0.0.4;q=1,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    *(
        f"{kind};version={version};escaping={escaping}"
        for kind, version in (("text/plain", "1.0.0"), ("application/openmetrics-text", "1.0.0"))
        for escaping in ("underscores", "allow-utf-8", "dots", "values", "unknown")
    ),
    "application/openmetrics-text;version=2.0.0;escaping=underscores",
]


@dataclass(frozen=True)
class Standing:
    """One monitor as a scrape sees it."""

    labels: Mapping[str, str]
    outcome: Outcome | None
    runs: Mapping[str, int]
    skipped: int
    maintenance: bool
    firing: bool | None


class Reference(Collector):
    """The monitor families built sample by sample with prometheus_client, as a
    collector does: what the made lines must equal once encoded."""

    def __init__(self, monitors: list[Standing], *, counters: bool = True) -> None:
        self.monitors = monitors
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text)

        success = gauge("probe_success", "1 when the check's reply came and matched")
        duration = gauge("probe_duration_seconds", "How long the check took")
        phases = gauge(
            "probe_websocket_duration_seconds", "Seconds spent in each phase of the connection"
        )
        code = gauge("probe_websocket_status_code", "HTTP status of the WebSocket upgrade")
        expiry = gauge(
            "probe_ssl_earliest_cert_expiry", "Unix time the server's certificate expires"
        )
        status = gauge("wsprobe_monitor_status", "0 ok, 1 warning, 2 critical, 3 unknown")
        value = gauge("wsprobe_monitor_value", "The check's numeric result")
        last = gauge("wsprobe_monitor_last_run_timestamp_seconds", "When the last check started")
        runs = CounterMetricFamily(
            "wsprobe_monitor_runs", "Checks run since the agent started, by result"
        )
        skipped = CounterMetricFamily(
            "wsprobe_monitor_skipped_runs",
            "Slots missed because the previous run was still going",
        )
        maintenance = gauge(
            "wsprobe_monitor_in_maintenance", "1 while a maintenance window holds its alerts back"
        )
        firing = gauge(
            "wsprobe_monitor_alert_firing", "1 while its alert fires (monitors with alerts)"
        )
        for monitor in self.monitors:
            labels = dict(monitor.labels)
            outcome = monitor.outcome
            if outcome is not None:
                success.add_sample("probe_success", labels, 1.0 if outcome.success else 0.0)
                duration.add_sample("probe_duration_seconds", labels, outcome.duration)
                for phase, seconds in outcome.timings.items():
                    phases.add_sample(
                        "probe_websocket_duration_seconds", {**labels, "phase": phase}, seconds
                    )
                if outcome.status_code is not None:
                    code.add_sample("probe_websocket_status_code", labels, outcome.status_code)
                if outcome.cert_expires is not None:
                    expiry.add_sample(
                        "probe_ssl_earliest_cert_expiry", labels, outcome.cert_expires
                    )
                status.add_sample("wsprobe_monitor_status", labels, int(outcome.status))
                if outcome.numeric_value is not None:
                    value.add_sample("wsprobe_monitor_value", labels, outcome.numeric_value)
                last.add_sample("wsprobe_monitor_last_run_timestamp_seconds", labels, outcome.time)
            for result in RESULTS:
                runs.add_sample(
                    "wsprobe_monitor_runs_total",
                    {**labels, "result": result},
                    monitor.runs.get(result, 0),
                )
            skipped.add_sample("wsprobe_monitor_skipped_runs_total", labels, monitor.skipped)
            maintenance.add_sample("wsprobe_monitor_in_maintenance", labels, monitor.maintenance)
            if monitor.firing is not None:
                firing.add_sample("wsprobe_monitor_alert_firing", labels, monitor.firing)
        yield from (success, duration, phases, code, expiry, status, value, last)
        if self.counters:
            yield from (runs, skipped, maintenance, firing)


def encoded(collectors: list[Collector], accept: str | None) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def rows_of(monitors: list[Standing]) -> list[tuple[str, ...]]:
    rows = []
    for monitor in monitors:
        series = MonitorSeries(monitor.labels)
        series.update(monitor.outcome, monitor.runs, monitor.skipped)
        rows.append(series.row(monitor.maintenance, monitor.firing))
    return rows


FACTS = AgentFacts(
    monitors=2,
    in_flight=1,
    reloads={"success": 3, "failure": 1},
    last_reload_ok=False,
    internal_errors={"check": 2},
    history_queued=5,
    notifications={("mail", "sent"): 4},
    queued=1,
)

# Values where formatting differs: NaN, infinities, signed zero, subnormal and huge
# numbers, integers past 2**53, exponents Go writes sooner than Python.
numbers = st.one_of(
    st.floats(),
    st.sampled_from(
        [-0.0, 0.0, 1e-300, 5e-324, 1e300, 1234567.0, 1e6, 123456.7, 2.0**63, -(2.0**63)]
    ),
    st.integers(-(2**63), 2**63).map(float),
)
# As the configuration allows them: ``__`` starts the names Prometheus reserves.
label_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: name not in {"monitor", "phase", "result"} and not name.startswith("__")
)
label_values = st.text(
    st.one_of(st.sampled_from('\\"\n\r\t{},= #'), st.characters(codec="utf-8")), max_size=12
)
outcomes = st.builds(
    Outcome,
    time=numbers,
    status=st.sampled_from(State),
    duration=numbers,
    value=st.one_of(st.none(), numbers, st.integers(-(2**63), 2**63 - 1), st.text(max_size=5)),
    error=st.none(),
    timings=st.dictionaries(st.sampled_from(PHASES), numbers, max_size=len(PHASES)),
    status_code=st.one_of(st.none(), st.integers(0, 999)),
    cert_expires=st.one_of(st.none(), numbers),
)
monitors = st.lists(
    st.builds(
        Standing,
        labels=st.builds(
            lambda name, own: {"monitor": name, **own},
            label_values,
            st.dictionaries(label_names, label_values, max_size=3),
        ),
        outcome=st.one_of(st.none(), outcomes),
        runs=st.dictionaries(st.sampled_from(RESULTS), st.integers(0, 2**63)),
        skipped=st.integers(0, 2**63),
        maintenance=st.booleans(),
        firing=st.one_of(st.none(), st.booleans()),
    ),
    max_size=4,
    unique_by=lambda standing: standing.labels["monitor"],
)


@pytest.mark.slow
@settings(deadline=None)
@given(monitors=monitors)
def test_metrics_are_what_prometheus_client_writes(monitors: list[Standing]) -> None:
    rows = rows_of(monitors)
    for accept in ACCEPTS:
        own = CollectorRegistry(auto_describe=False)
        own.register(AgentCollector(FACTS))
        body, content_type = exposition(rows, own, accept)
        expected, expected_type = encoded([Reference(monitors), AgentCollector(FACTS)], accept)
        assert content_type == expected_type
        assert body == expected, accept
        parse = (
            openmetrics_families
            if content_type.startswith("application/openmetrics-text")
            else text_string_to_metric_families
        )
        if "escaping=dots" in content_type or (
            "escaping=values" in content_type and parse is openmetrics_families
        ):
            continue  # names escaped: the parser reads them as written
        # A scraper reads them (the bytes are prometheus_client's own: read once).
        assert list(parse(body.decode()))


@pytest.mark.slow
@settings(deadline=None)
@given(monitors=monitors)
def test_labels_and_values_read_back_as_given(monitors: list[Standing]) -> None:
    body, _ = exposition(rows_of(monitors), CollectorRegistry(), None)
    read = {family.name: family for family in text_string_to_metric_families(body.decode())}
    skipped = [
        (sample.labels, sample.value) for sample in read["wsprobe_monitor_skipped_runs"].samples
    ]
    assert skipped == [(dict(monitor.labels), float(monitor.skipped)) for monitor in monitors]
    durations = [
        (sample.labels, sample.value) for sample in read["probe_duration_seconds"].samples
    ]
    expected = [
        (dict(monitor.labels), monitor.outcome.duration)
        for monitor in monitors
        if monitor.outcome is not None
    ]
    assert len(durations) == len(expected)
    for (labels, value), (want_labels, want) in zip(durations, expected, strict=True):
        assert labels == want_labels
        assert value == want or (math.isnan(value) and math.isnan(want))


@settings(deadline=None)
@given(outcome=outcomes)
def test_probe_is_what_prometheus_client_writes(outcome: Outcome) -> None:
    reference = Reference(
        [Standing({}, outcome, {}, 0, maintenance=False, firing=None)], counters=False
    )
    for accept in ACCEPTS:
        assert probe_exposition(outcome, accept) == encoded([reference], accept)


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        # Versions prometheus_client's negotiation cannot compare: the text format.
        ("application/openmetrics-text;version=a", "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=1.a", "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain;version=1.0.x", "text/plain; version=0.0.4; charset=utf-8"),
        # What it reads, as it reads it.
        ("application/openmetrics-text;version=0.0.1", "text/plain; version=0.0.4; charset=utf-8"),
        (
            "application/openmetrics-text;version=",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        (
            "text/plain;version=1.0.0;escaping=other",
            "text/plain; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
    ],
)
def test_the_format_of_any_accept_header(accept: str, content_type: str) -> None:
    body, served = probe_exposition(Outcome(1.0, State.OK, 0.5), accept)
    assert served == content_type
    assert body.startswith(b"# HELP probe_success ")


@pytest.mark.parametrize(
    ("accept", "joins"),
    [
        (None, True),
        ("application/openmetrics-text;version=1.0.0", True),
        ("text/plain;version=1.0.0;escaping=values", True),
        ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8", True),
        ("text/plain;version=1.0.0;escaping=dots", False),
        ("application/openmetrics-text;version=1.0.0;escaping=dots", False),
        ("application/openmetrics-text;version=1.0.0;escaping=values", False),
    ],
)
def test_escapings_that_rename_are_the_slow_path(accept: str | None, joins: bool) -> None:
    assert joined(accept) is joins


def monitor(name: str, labels: tuple[tuple[str, str], ...] = ()) -> Monitor:
    return Monitor(name, "ws://127.0.0.1:1/", Probe(Options()), 10.0, labels, "")


def sample_lines(board: Board) -> list[str]:
    return "".join(
        "".join(entry.series.row(maintenance=False, firing=None)) for entry in board.entries()
    ).splitlines()


def test_the_board_makes_the_lines_anew_at_each_change() -> None:
    board = Board()
    known = {"a": [Outcome(100.0, State.CRITICAL, 2.0, error="down")]}
    board.configure([monitor("a", (("team", "x"),)), monitor("b")], known)
    lines = sample_lines(board)
    # a starts from its history, b has only its counters.
    assert 'probe_success{monitor="a",team="x"} 0.0' in lines
    assert 'wsprobe_monitor_runs_total{monitor="a",result="ok",team="x"} 0.0' in lines
    assert not any(line.startswith('probe_success{monitor="b"}') for line in lines)
    assert 'wsprobe_monitor_runs_total{monitor="b",result="ok"} 0.0' in lines

    board.record("b", Outcome(200.0, State.OK, 0.25, value=7, timings={"connect": 0.001}))
    board.skip("a", 3)
    lines = sample_lines(board)
    assert 'probe_success{monitor="b"} 1.0' in lines
    assert 'probe_websocket_duration_seconds{monitor="b",phase="connect"} 0.001' in lines
    assert 'wsprobe_monitor_value{monitor="b"} 7.0' in lines
    assert 'wsprobe_monitor_last_run_timestamp_seconds{monitor="b"} 200.0' in lines
    assert 'wsprobe_monitor_runs_total{monitor="b",result="ok"} 1.0' in lines
    assert 'wsprobe_monitor_skipped_runs_total{monitor="a",team="x"} 3.0' in lines

    # A reload: a's labels change (its outcome and counts stay), b is gone.
    board.configure([monitor("a", (("team", 'y"\\\n'),))], {})
    lines = sample_lines(board)
    assert 'probe_success{monitor="a",team="y\\"\\\\\\n"} 0.0' in lines
    assert 'wsprobe_monitor_skipped_runs_total{monitor="a",team="y\\"\\\\\\n"} 3.0' in lines
    assert not any('team="x"' in line or 'monitor="b"' in line for line in lines)


@pytest.mark.parametrize(
    ("maintenance", "firing", "expected"),
    [
        (False, None, ['wsprobe_monitor_in_maintenance{monitor="m"} 0.0']),
        (
            True,
            False,
            [
                'wsprobe_monitor_in_maintenance{monitor="m"} 1.0',
                'wsprobe_monitor_alert_firing{monitor="m"} 0.0',
            ],
        ),
        (
            False,
            True,
            [
                'wsprobe_monitor_in_maintenance{monitor="m"} 0.0',
                'wsprobe_monitor_alert_firing{monitor="m"} 1.0',
            ],
        ),
    ],
)
def test_a_scrape_reads_maintenance_and_firing_at_its_time(
    maintenance: bool, firing: bool | None, expected: list[str]
) -> None:
    series = MonitorSeries({"monitor": "m"})
    series.update(None, {}, 0)
    assert "".join(series.row(maintenance, firing)[-2:]).splitlines() == expected
