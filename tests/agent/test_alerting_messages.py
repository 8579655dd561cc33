"""What a notification says: default texts, templates in the sandbox, Alertmanager's body."""

from __future__ import annotations

import asyncio

import pytest

from wsprobe.agent.alerting.notice import Notice
from wsprobe.agent.alerting.renderer import render_bounded
from wsprobe.agent.alerting.send import alertmanager_alerts, notify_type, title_text
from wsprobe.agent.alerting.template import compile_template, render

FIRING = Notice(
    "firing",
    "api",
    "critical",
    "critical",
    since=100.0,
    at=160.0,
    error="refused",
    value=3,
    labels=(("team", "core"),),
    link="http://a:1/#api",
)


@pytest.mark.parametrize(
    ("kind", "state", "severity", "title", "apprise_type"),
    [
        ("firing", "critical", "critical", "[FIRING] api is CRITICAL", "failure"),
        ("firing", "unknown", "critical", "[FIRING] api is UNKNOWN", "failure"),
        ("firing", "warning", "warning", "[FIRING] api is WARNING", "warning"),
        ("reminder", "critical", "critical", "[REMINDER] api is still CRITICAL", "failure"),
        ("resolved", "ok", "critical", "[RESOLVED] api is OK again", "success"),
        ("test", "ok", "info", "[TEST] wsprobe test notification", "info"),
    ],
)
def test_titles_and_types(
    kind: str, state: str, severity: str, title: str, apprise_type: str
) -> None:
    notice = Notice(kind, "api", state, severity, since=0.0, at=0.0)
    assert title_text(notice.fields()) == title
    assert notify_type(notice) == apprise_type


def test_notices_round_trip_through_the_outbox_form() -> None:
    assert Notice.from_json(FIRING.to_json()) == FIRING
    for text in ("[]", "{}", '{"kind": "nope"}', "1"):
        with pytest.raises((ValueError, TypeError)):
            Notice.from_json(text)


@pytest.mark.parametrize(
    ("template", "text", "problem"),
    [
        ("{{ monitor }}: {{ error }} ({{ labels.team }})", "api: refused (core)", None),
        ("{{ since | when }}", "1970-01-01 00:01:40 UTC", None),
        ("{{ nosuch }}", "", None),
        ("{{ 'x' * 10 }}", "xxxxxxxxxx", None),
        ("{{ 'x' * 1000000000 }}", "DEFAULT", "SecurityError: result too long"),
        ("{{ [1] * 1000000000 }}", "DEFAULT", "SecurityError: result too long"),
        ("{{ 9 ** 1000000 }}", "DEFAULT", "SecurityError: exponent too large"),
        ("{{ 2 ** 64 }}", "18446744073709551616", None),
        ("{{ 9 ** 64 ** 64 ** 64 }}", "DEFAULT", "SecurityError: exponent too large"),
        ("{{ ().__class__.__bases__ }}", "DEFAULT", None),
        ("{{ labels.clear() }}", "DEFAULT", None),
        ("{{ 'x' * 20000 }}", "x" * 9999 + "…", None),
    ],
)
def test_templates_run_in_the_sandbox(template: str, text: str, problem: str | None) -> None:
    got, why = render(compile_template(template), FIRING.fields(), lambda _: "DEFAULT", 10_000)
    assert got == text
    if problem is not None:
        assert why == problem
    elif text == "DEFAULT":
        assert why is not None
    else:
        assert why is None


@pytest.mark.parametrize(
    ("template", "text", "problem"),
    [
        ("{{ monitor }} is {{ state }}", "api is critical", None),
        ("{{ 1/0 }}", "DEFAULT", "ZeroDivisionError: division by zero"),
        # What the sandbox lets through but would freeze or exhaust the agent: bounded.
        pytest.param(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "DEFAULT",
            "template used more than 2s of CPU",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "{{ lipsum(100000, min=1000000, max=1000001) }}",
            "DEFAULT",
            "template used more than 2s of CPU",
            marks=pytest.mark.slow,
        ),
        (
            "{{ 'x'.ljust(2000000000) }}",
            "DEFAULT",
            "MemoryError: ",
        ),
    ],
)
def test_templates_render_in_a_bounded_process(
    template: str, text: str, problem: str | None
) -> None:
    jobs = [(compile_template(template), lambda _: "DEFAULT", 100), (None, lambda _: "PLAIN", 100)]
    got = asyncio.run(render_bounded(jobs, FIRING.fields()))
    assert got == [(text, problem), ("PLAIN", None)]


def test_alertmanager_body() -> None:
    assert alertmanager_alerts(FIRING, now=1000.0) == [
        {
            "labels": {
                "team": "core",
                "alertname": "WebSocketMonitorFailing",
                "monitor": "api",
                "severity": "critical",
            },
            "annotations": {
                "summary": "[FIRING] api is CRITICAL",
                "error": "refused",
                "value": "3",
            },
            "startsAt": "1970-01-01T00:01:40.000Z",
            "endsAt": "1970-01-01T00:20:40.000Z",
            "generatorURL": "http://a:1/#api",
        }
    ]
    resolved = Notice(
        "resolved", "api", "ok", "critical", since=100.0, at=500.0, labels=(("severity", "mine"),)
    )
    # A resolved alert ends when it was decided, never later than the send.
    [late] = alertmanager_alerts(resolved, now=2000.0)
    assert late["endsAt"] == "1970-01-01T00:08:20.000Z"
    assert late["labels"]["severity"] == "critical"
    [early] = alertmanager_alerts(resolved, now=400.0)
    assert early["endsAt"] == "1970-01-01T00:06:40.000Z"
    assert "generatorURL" not in early
