"""The alerting configuration: what it reads, and one exact message per mistake."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wsprobe.agent.alerting.config import (
    _ALERTING_FIELDS,
    _NOTIFIER_FIELDS,
    _WINDOW_FIELDS,
    ALERTMANAGER,
    APPRISE,
    AlertingConfig,
    AlertRule,
    parse_alerting,
)
from wsprobe.agent.alerting.windows import OneOff, Weekly
from wsprobe.agent.config import ConfigError
from wsprobe.plugin import State

MONITORS = """
monitors:
  - {name: gateway, url: "ws://127.0.0.1:1/"}
  - {name: api, url: "ws://127.0.0.1:1/"}
  - {name: db, url: "ws://127.0.0.1:1/"}
"""
ENV = {"HOOK_TOKEN": "s3cr3t-token", "AM_PASS": "am-pass"}


def parse(text: str, environ: dict[str, str] | None = None) -> AlertingConfig:
    document: dict[str, Any] = yaml.safe_load(MONITORS + text)
    return parse_alerting(document, environ=ENV if environ is None else environ)


def test_the_example_of_the_documentation() -> None:
    config = parse("""
notifiers:
  oncall: {urls: ["mailto://user:pass@smtp.example:587?to=ops@example.com", "json://hooks.example/wsprobe"]}
  team: {urls: ["json://user:${HOOK_TOKEN}@hooks.example/team"], title: "{{ monitor }} {{ kind }}"}
  am: {alertmanager: ["http://am-1:9093", "http://admin:${AM_PASS}@am-2:9093/"]}
alerting:
  notify: [oncall]
  failure_threshold: 3
  success_threshold: 2
  remind_every: 1h
  send_resolved: true
  on: [critical, unknown]
  page_url: http://agent.example:9814
maintenance:
  - {monitors: [api], start: "2026-12-24T22:00:00Z", duration: 2h}
  - {every: [sun], at: "03:00", duration: 30m, timezone: America/Sao_Paulo}
  - {every: [daily], at: "23:30", duration: 1h}
""")
    assert sorted(config.notifiers) == ["am", "oncall", "team"]
    oncall = config.notifiers["oncall"].destinations
    assert [d.kind for d in oncall] == [APPRISE, APPRISE]
    assert "pass" not in oncall[0].shown
    team = config.notifiers["team"].destinations[0]
    assert "s3cr3t-token" in team.url
    assert "s3cr3t-token" not in team.shown
    am = config.notifiers["am"].destinations
    assert [d.kind for d in am] == [ALERTMANAGER, ALERTMANAGER]
    assert am[1].url == "http://admin:am-pass@am-2:9093"
    assert "am-pass" not in am[1].shown
    assert len({d.key for n in config.notifiers.values() for d in n.destinations}) == 5
    rule = AlertRule(notify=("oncall",), remind_every=3600.0)
    assert config.rules == {"gateway": rule, "api": rule, "db": rule}
    assert config.page_url == "http://agent.example:9814/"
    assert config.link("api") == "http://agent.example:9814/#api"
    assert config.maintenance == (
        OneOff(
            datetime.datetime(2026, 12, 24, 22, tzinfo=datetime.UTC).timestamp(),
            7200.0,
            frozenset({"api"}),
        ),
        Weekly(frozenset({6}), datetime.time(3), 1800.0, "America/Sao_Paulo"),
        Weekly(frozenset(range(7)), datetime.time(23, 30), 3600.0, "UTC"),
    )


def test_monitors_override_the_defaults_or_turn_alerts_off() -> None:
    config = parse("""
notifiers: {a: {urls: ["json://127.0.0.1:1/"]}}
alerting: {notify: [a], failure_threshold: 5, on: [critical]}
""")
    assert config.rules["api"] == AlertRule(
        notify=("a",), failure_threshold=5, on=frozenset({State.CRITICAL})
    )
    document: dict[str, Any] = yaml.safe_load(MONITORS)
    document["notifiers"] = {
        "a": {"urls": ["json://127.0.0.1:1/"]},
        "b": {"urls": ["json://127.0.0.1:2/"]},
    }
    document["alerting"] = {"notify": ["a"], "failure_threshold": 5}
    document["monitors"][1]["alerts"] = {
        "notify": ["b", "a", "b"],
        "success_threshold": 1,
        "on": ["warning", "critical"],
    }
    document["monitors"][2]["alerts"] = False
    document["monitors"][1]["depends_on"] = ["gateway"]
    config = parse_alerting(document, environ={})
    assert config.rules == {
        "gateway": AlertRule(notify=("a",), failure_threshold=5),
        "api": AlertRule(
            notify=("b", "a"),
            failure_threshold=5,
            success_threshold=1,
            on=frozenset({State.WARNING, State.CRITICAL}),
        ),
    }
    assert config.depends_on == {"api": ("gateway",)}


def test_no_alerting_configured_means_alerts_that_tell_nobody() -> None:
    config = parse("")
    assert config.notifiers == {}
    assert config.rules == {name: AlertRule() for name in ("gateway", "api", "db")}
    assert config.maintenance == ()


def with_monitor(field: str, value: str) -> str:
    return f"""
notifiers: {{a: {{urls: ["json://127.0.0.1:1/"]}}}}
monitors:
  - {{name: gateway, url: "ws://127.0.0.1:1/"}}
  - {{name: api, url: "ws://127.0.0.1:1/", {field}: {value}}}
  - {{name: db, url: "ws://127.0.0.1:1/", depends_on: [api]}}
"""


ERRORS = [
    ("notifiers: []", "notifiers: expected a mapping, got a list"),
    ("notifiers: {a: {}}", "notifiers.a: needs urls or alertmanager"),
    (
        'notifiers: {"a b": {urls: []}}',
        "notifiers.a b: a notifier's name is letters, digits, '.', '_' or '-' (at most 64)",
    ),
    (
        'notifiers: {"a\\n": {urls: ["json://127.0.0.1/"]}}',
        "notifiers.a\\n: a notifier's name is letters, digits, '.', '_' or '-' (at most 64)",
    ),
    ("notifiers: {a: {url: [x]}}", "notifiers.a.url: unknown field"),
    ('notifiers: {a: {urls: "json://x"}}', "notifiers.a.urls: expected a list of URLs, got text"),
    ("notifiers: {a: {urls: [1]}}", "notifiers.a.urls: expected a list of URLs, got a list"),
    (
        'notifiers: {a: {urls: ["json://127.0.0.1/", "nosuch://user:pw@host/x"]}}',
        'notifiers.a.urls[1]: not a URL Apprise can send to ("nosuch"://…)',
    ),
    (
        'notifiers: {a: {urls: ["just text"]}}',
        "notifiers.a.urls[0]: not a URL Apprise can send to",
    ),
    (
        'notifiers: {a: {urls: ["${NOPE}"]}}',
        "notifiers.a.urls[0]: environment variable NOPE is not set",
    ),
    (
        'notifiers: {a: {urls: ["json://h/${HOOK_TOKEN}x\\n"]}}',
        'notifiers.a.urls[0]: not a URL Apprise can send to ("json"://…)',
    ),
    (
        'notifiers: {a: {alertmanager: ["ftp://am:9093"]}}',
        "notifiers.a.alertmanager[0]: expected an http:// or https:// URL",
    ),
    (
        'notifiers: {a: {alertmanager: ["http://u:${AM_PASS}@:9093"]}}',
        "notifiers.a.alertmanager[0]: expected an http:// or https:// URL",
    ),
    (
        'notifiers: {a: {alertmanager: ["http://am:99999"]}}',
        "notifiers.a.alertmanager[0]: expected an http:// or https:// URL",
    ),
    (
        'notifiers: {a: {urls: ["json://h/"], title: "{{ monitor"}}',
        "notifiers.a.title: invalid template at line 1: unexpected end of template, expected 'end of print statement'.",
    ),
    (
        'notifiers: {a: {urls: ["json://h/"], body: 3}}',
        "notifiers.a.body: expected a template, got 3",
    ),
    (
        'notifiers: {a: {urls: ["json://h/"], body: "' + "x" * 10001 + '"}}',
        "notifiers.a.body: a template is at most 10000 characters",
    ),
    ("alerting: []", "alerting: expected a mapping, got a list"),
    ("alerting: {notify: oncall}", "alerting.notify: expected notifier names, got text"),
    ("alerting: {notify: [oncall]}", 'alerting.notify[0]: no notifier "oncall"'),
    (
        "alerting: {failure_threshold: 0}",
        "alerting.failure_threshold: expected a whole number from 1 to 1000, got 0",
    ),
    (
        "alerting: {failure_threshold: 1001}",
        "alerting.failure_threshold: expected a whole number from 1 to 1000, got 1001",
    ),
    (
        "alerting: {success_threshold: true}",
        "alerting.success_threshold: expected a whole number from 1 to 1000, got true",
    ),
    (
        "alerting: {success_threshold: 1.5}",
        "alerting.success_threshold: expected a whole number from 1 to 1000, got 1.5",
    ),
    (
        "alerting: {remind_every: 30s}",
        'alerting.remind_every: expected 0 or from 1m to 30d, got "30s"',
    ),
    (
        "alerting: {remind_every: 31d}",
        'alerting.remind_every: expected 0 or from 1m to 30d, got "31d"',
    ),
    (
        "alerting: {remind_every: soon}",
        'alerting.remind_every: expected a duration like 30s, got "soon"',
    ),
    (
        "alerting: {send_resolved: yes please}",
        'alerting.send_resolved: expected true or false, got "yes please"',
    ),
    ("alerting: {on: []}", "alerting.on: expected a list of states, got a list"),
    ("alerting: {on: [ok]}", 'alerting.on[0]: expected critical, unknown or warning, got "ok"'),
    ("alerting: {on: critical}", "alerting.on: expected a list of states, got text"),
    (
        "alerting: {page_url: agent:9814}",
        'alerting.page_url: expected an http:// or https:// URL, got "agent:9814"',
    ),
    ("alerting: {page: x}", "alerting.page: unknown field"),
    (with_monitor("alerts", "{notify: [b]}"), 'monitors[1].alerts.notify[0]: no notifier "b"'),
    (
        with_monitor("alerts", "{page_url: http://x:1/}"),
        "monitors[1].alerts.page_url: unknown field",
    ),
    (with_monitor("alerts", "true"), "monitors[1].alerts: expected a mapping, got true"),
    (
        with_monitor("alerts", "{failure_threshold: -1}"),
        "monitors[1].alerts.failure_threshold: expected a whole number from 1 to 1000, got -1",
    ),
    (
        with_monitor("depends_on", "gateway"),
        "monitors[1].depends_on: expected monitor names, got text",
    ),
    (with_monitor("depends_on", "[nosuch]"), 'monitors[1].depends_on[0]: no monitor "nosuch"'),
    (
        with_monitor("depends_on", "[gateway, api]"),
        "monitors[1].depends_on[1]: a monitor cannot depend on itself",
    ),
    (with_monitor("depends_on", "[db]"), "monitors[1].depends_on: a cycle: api -> db -> api"),
    ("maintenance: {}", "maintenance: expected a list, got a mapping"),
    ("maintenance: [{start: '2026-12-24T22:00:00Z'}]", "maintenance[0].duration: required"),
    ("maintenance: [{duration: 1h}]", "maintenance[0]: needs exactly one of start and every"),
    (
        "maintenance: [{start: '2026-12-24T22:00:00Z', every: [daily], duration: 1h}]",
        "maintenance[0]: needs exactly one of start and every",
    ),
    (
        "maintenance: [{start: tomorrow, duration: 1h}]",
        'maintenance[0].start: expected a time like 2026-12-24T22:00:00Z, got "tomorrow"',
    ),
    (
        "maintenance: [{start: 2026-12-24, duration: 1h}]",
        'maintenance[0].start: expected a time like 2026-12-24T22:00:00Z, got "2026-12-24"',
    ),
    (
        "maintenance: [{start: '2026-12-24T22:00:00Z', at: '03:00', duration: 1h}]",
        "maintenance[0].at: a one-off window has a start, not at",
    ),
    (
        "maintenance: [{start: '2026-12-24T22:00:00Z', duration: 367d}]",
        "maintenance[0].duration: a one-off window lasts at most 366d",
    ),
    (
        "maintenance: [{start: '2026-12-24T22:00:00Z', duration: 0}]",
        "maintenance[0].duration: expected a positive duration, got 0",
    ),
    (
        "maintenance: [{every: [funday], at: '03:00', duration: 1h}]",
        'maintenance[0].every[0]: expected daily or one of mon, tue, wed, thu, fri, sat, sun, got "funday"',
    ),
    (
        "maintenance: [{every: [], at: '03:00', duration: 1h}]",
        "maintenance[0].every: expected [daily] or a list of weekdays, got a list",
    ),
    ("maintenance: [{every: [mon], duration: 1h}]", "maintenance[0].at: required"),
    (
        "maintenance: [{every: [mon], at: '24:00', duration: 1h}]",
        'maintenance[0].at: expected HH:MM (00:00 to 23:59), got "24:00"',
    ),
    (
        'maintenance: [{every: [mon], at: "03:00\\n", duration: 1h}]',
        'maintenance[0].at: expected HH:MM (00:00 to 23:59), got "03:00\\n"',
    ),
    (
        "maintenance: [{every: [mon], at: '3:00', duration: 1h}]",
        'maintenance[0].at: expected HH:MM (00:00 to 23:59), got "3:00"',
    ),
    (
        "maintenance: [{every: [mon], at: '03:00', duration: 8d}]",
        "maintenance[0].duration: a recurring window lasts at most 7d",
    ),
    (
        "maintenance: [{every: [mon], at: '03:00', duration: 1h, timezone: Mars/Olympus}]",
        'maintenance[0].timezone: expected an IANA time zone like Europe/Berlin, got "Mars/Olympus"',
    ),
    (
        "maintenance: [{every: [mon], at: '03:00', duration: 1h, timezone: ../../etc/passwd}]",
        'maintenance[0].timezone: expected an IANA time zone like Europe/Berlin, got "../../etc/passwd"',
    ),
    (
        "maintenance: [{every: [mon], at: '03:00', duration: 1h, monitors: [nosuch]}]",
        'maintenance[0].monitors[0]: no monitor "nosuch"',
    ),
    (
        "maintenance: [{every: [mon], at: '03:00', duration: 1h, monitors: api}]",
        "maintenance[0].monitors: expected monitor names, got text",
    ),
    (
        "maintenance: [{every: [mon], at: '03:00', duration: 1h, when: now}]",
        "maintenance[0].when: unknown field",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_each_mistake_names_its_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert str(raised.value) == message
    # No secret of the environment reaches an error.
    for secret in ENV.values():
        assert secret not in str(raised.value)


def test_bounds_on_the_number_of_things() -> None:
    many = {f"n{i}": {"urls": ["json://127.0.0.1/"]} for i in range(101)}
    with pytest.raises(ConfigError, match=r"^notifiers: at most 100 notifiers, got 101$"):
        parse_alerting({"notifiers": many}, environ={})
    urls = {"a": {"urls": ["json://127.0.0.1/"] * 21}}
    with pytest.raises(ConfigError, match=r"^notifiers.a.urls: at most 20 URLs, got 21$"):
        parse_alerting({"notifiers": urls}, environ={})
    windows = [{"every": ["daily"], "at": "03:00", "duration": "1h"}] * 1001
    with pytest.raises(ConfigError, match=r"^maintenance: at most 1000 windows, got 1001$"):
        parse_alerting({"maintenance": windows}, environ={})


def test_a_long_chain_of_dependencies_is_checked_without_recursion() -> None:
    count = 5000
    monitors: list[dict[str, Any]] = [
        {"name": f"m{i}", "depends_on": [f"m{i + 1}"]} for i in range(count)
    ]
    monitors.append({"name": f"m{count}"})
    config = parse_alerting({"monitors": monitors}, environ={})
    assert len(config.depends_on) == count
    monitors[-1]["depends_on"] = ["m0"]
    with pytest.raises(ConfigError, match=r"^monitors\[0\].depends_on: a cycle: m0 -> m1 -> "):
        parse_alerting({"monitors": monitors}, environ={})


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(sorted(_ALERTING_FIELDS | _NOTIFIER_FIELDS | _WINDOW_FIELDS))
ENTRY = st.dictionaries(FIELDS, JSONISH, max_size=5)


@given(
    notifiers=st.dictionaries(st.text(max_size=8), ENTRY, max_size=3) | JSONISH,
    alerting=ENTRY | JSONISH,
    maintenance=st.lists(ENTRY, max_size=3) | JSONISH,
    alerts=ENTRY | JSONISH,
    depends_on=JSONISH,
)
@settings(max_examples=300, deadline=None)
@pytest.mark.slow
def test_any_document_is_read_or_refused_with_a_config_error(
    notifiers: Any, alerting: Any, maintenance: Any, alerts: Any, depends_on: Any
) -> None:
    document = {
        "notifiers": notifiers,
        "alerting": alerting,
        "maintenance": maintenance,
        "monitors": [{"name": "api", "alerts": alerts, "depends_on": depends_on}, {"name": "gw"}],
    }
    message = ""
    try:
        parse_alerting(document, environ={})
    except ConfigError as exc:
        message = str(exc)
    assert "\n" not in message
