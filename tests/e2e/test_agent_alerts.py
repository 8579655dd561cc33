"""Alerts from a real ``wsprobe agent`` process: a watched service switched off and on,
notifications at a real ``json://`` receiver, a real SMTP server and a real Alertmanager;
a receiver down, a restart mid-outage, a maintenance window and a failing parent."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LoopThread
from tests.support.agent import AgentProcess, value, wait_for
from tests.support.alerting import Mailbox, Receiver, Service, alertmanager, free_port

pytestmark = pytest.mark.slow

SECRETS = ("hook-secret", "mail-secret")


class Parts:
    """A receiver, a mailbox and two services on the test's loop thread."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.receiver = Receiver()
        self.mailbox = Mailbox("wsprobe", "mail-secret")
        self.service = Service()
        self.other = Service()
        loop.run(self.mailbox.start())
        loop.run(self.service.on())
        loop.run(self.other.on())

    def hook(self, port: int | None = None) -> str:
        port = self.receiver.port if port is None else port
        return f"json://user:hook-secret@127.0.0.1:{port}/hook"

    def mail(self) -> str:
        return (
            f"mailto://wsprobe:mail-secret@127.0.0.1:{self.mailbox.port}"
            "?to=ops@example.com&from=wsprobe@example.com"
        )

    def close(self) -> None:
        for stop in (
            self.receiver.stop(),
            self.mailbox.stop(),
            self.service.off(),
            self.other.off(),
        ):
            self.loop.run(stop)


@pytest.fixture
def parts(loop_thread: LoopThread) -> Iterator[Parts]:
    running = Parts(loop_thread)
    try:
        yield running
    finally:
        running.close()


def start(agents: list[AgentProcess], tmp_path: Path, text: str) -> AgentProcess:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    agent = AgentProcess(path, tmp_path / "state")
    agents.append(agent)
    return agent


def hooks_config(hook: str, rest: str, *, failure: int = 1, success: int = 1) -> str:
    """Checks every 0.2 s, alerts to ``hook`` after ``failure`` runs, then ``rest``."""
    return (
        "defaults: {interval: 0.2s, timeout: 2s}\n"
        f'notifiers: {{hooks: {{urls: ["{hook}"]}}}}\n'
        f"alerting: {{notify: [hooks], failure_threshold: {failure}, "
        f"success_threshold: {success}}}\n{rest}"
    )


def monitor(agent: AgentProcess, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = agent.json(f"/api/monitors/{name}")
    return shown


def status(agent: AgentProcess, name: str) -> str | None:
    last = monitor(agent, name)["last"]
    return None if last is None else str(last["status"])


def alert_state(agent: AgentProcess, name: str) -> str:
    return str(monitor(agent, name)["alert"]["state"])


def more_runs(agent: AgentProcess, name: str, count: int) -> None:
    """Wait for ``count`` more runs of ``name``: time for what they would have sent."""
    before = sum(monitor(agent, name)["counts"].values())
    wait_for(
        lambda: sum(monitor(agent, name)["counts"].values()) >= before + count,
        60,
        f"{count} more runs of {name}",
    )


def titles_of(receiver: Receiver, name: str) -> list[str]:
    return [title for title in receiver.titles() if f" {name} " in title]


def subjects(mailbox: Mailbox) -> list[str]:
    return [
        line.removeprefix("Subject: ")
        for message in mailbox.messages
        for line in message.splitlines()
        if line.startswith("Subject: ")
    ]


def test_an_outage_is_one_firing_and_one_resolved_per_notifier(
    parts: Parts, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    port = parts.loop.run(parts.receiver.start())
    agent = start(
        agents,
        tmp_path,
        f"""
defaults: {{interval: 0.2s, timeout: 2s}}
notifiers:
  hooks: {{urls: ["{parts.hook()}"]}}
  mail: {{urls: ["{parts.mail()}"]}}
alerting: {{notify: [hooks, mail], failure_threshold: 2, success_threshold: 2}}
monitors:
  - {{name: api, url: "{parts.service.url}", labels: {{team: core}}}}
""",
    )
    wait_for(lambda: status(agent, "api") == "ok", 60, "api to be ok")
    assert monitor(agent, "api")["alert"] == {"state": "ok", "since": None}
    assert monitor(agent, "api")["maintenance"] is False

    parts.loop.run(parts.service.off())
    wait_for(
        lambda: len(parts.receiver.bodies) == 1 and len(parts.mailbox.messages) == 1,
        60,
        "the firing at both notifiers",
    )
    shown = monitor(agent, "api")
    assert shown["alert"]["state"] == "firing"
    assert isinstance(shown["alert"]["since"], float)
    samples = agent.metrics()
    assert value(samples, "wsprobe_monitor_alert_firing", monitor="api", team="core") == 1
    assert value(samples, "wsprobe_monitor_in_maintenance", monitor="api", team="core") == 0
    _, _, page = agent.get("/")
    assert '<article class="monitor critical" id="api"' in page
    assert 'data-alert="firing">alert firing since' in page

    parts.loop.run(parts.service.on())
    wait_for(
        lambda: len(parts.receiver.bodies) == 2 and len(parts.mailbox.messages) == 2,
        60,
        "the resolved at both notifiers",
    )

    def delivered() -> bool:
        samples = agent.metrics()
        return value(samples, "wsprobe_notifications_queued") == 0 and all(
            value(samples, "wsprobe_notifications_total", notifier=name, result="sent") == 2
            for name in ("hooks", "mail")
        )

    wait_for(delivered, 60, "the counters of two notifications per notifier")
    more_runs(agent, "api", 5)
    assert parts.receiver.titles() == ["[FIRING] api is CRITICAL", "[RESOLVED] api is OK again"]
    assert [body["type"] for body in parts.receiver.bodies] == ["failure", "success"]
    assert f"Details: {agent.url}#api" in parts.receiver.bodies[0]["message"]
    assert subjects(parts.mailbox) == ["[FIRING] api is CRITICAL", "[RESOLVED] api is OK again"]
    assert alert_state(agent, "api") == "ok"
    shown_url = f"json://user:****@127.0.0.1:{port}/hook"
    assert any(f"alerts: sent firing of api to hooks ({shown_url})" in x for x in agent.lines)
    assert any("alerts: sent resolved of api to mail (mailto://" in x for x in agent.lines)

    seen = [
        agent.get("/api/monitors")[2],
        agent.get("/api/monitors/api")[2],
        agent.get("/")[2],
        agent.get("/metrics")[2],
    ]
    assert agent.stop() == 0
    seen += agent.lines
    assert not [text for text in seen for secret in SECRETS if secret in text]


def test_a_receiver_down_during_the_firing_gets_it_later_then_the_resolved(
    parts: Parts, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    port = free_port()
    agent = start(
        agents,
        tmp_path,
        hooks_config(parts.hook(port), f'monitors: [{{name: api, url: "{parts.service.url}"}}]\n'),
    )
    wait_for(lambda: status(agent, "api") == "ok", 60, "api to be ok")
    parts.loop.run(parts.service.off())
    agent.wait_for_log("alerts: cannot send firing of api to hooks", 60)
    parts.loop.run(parts.service.on())
    wait_for(lambda: alert_state(agent, "api") == "ok", 60, "the alert to resolve")
    wait_for(
        lambda: value(agent.metrics(), "wsprobe_notifications_queued") == 2,
        60,
        "the firing and the resolved queued",
    )
    assert parts.receiver.bodies == []

    parts.loop.run(parts.receiver.start(port))
    wait_for(lambda: len(parts.receiver.bodies) == 2, 60, "both notifications")
    assert parts.receiver.titles() == ["[FIRING] api is CRITICAL", "[RESOLVED] api is OK again"]
    failed = value(
        agent.metrics(), "wsprobe_notifications_total", notifier="hooks", result="failed"
    )
    assert failed is not None
    assert failed >= 1
    assert agent.stop() == 0


def test_an_agent_restarted_mid_outage_does_not_fire_twice(
    parts: Parts, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    parts.loop.run(parts.receiver.start())
    text = hooks_config(
        parts.hook(), f'monitors: [{{name: api, url: "{parts.service.url}"}}]\n', failure=2
    )
    first = start(agents, tmp_path, text)
    wait_for(lambda: status(first, "api") == "ok", 60, "api to be ok")
    parts.loop.run(parts.service.off())
    wait_for(lambda: len(parts.receiver.bodies) == 1, 60, "the firing")
    since = monitor(first, "api")["alert"]["since"]
    assert first.stop() == 0

    second = start(agents, tmp_path, text)
    assert monitor(second, "api")["alert"] == {"state": "firing", "since": since}
    more_runs(second, "api", 5)
    assert status(second, "api") == "critical"
    assert parts.receiver.titles() == ["[FIRING] api is CRITICAL"]

    parts.loop.run(parts.service.on())
    wait_for(lambda: len(parts.receiver.bodies) == 2, 60, "the resolved")
    more_runs(second, "api", 3)
    assert parts.receiver.titles() == ["[FIRING] api is CRITICAL", "[RESOLVED] api is OK again"]
    assert second.stop() == 0


def test_a_maintenance_window_and_a_failing_parent_hold_notifications_back(
    parts: Parts, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    parts.loop.run(parts.receiver.start())
    # A daily window that began an hour ago and lasts three: now is in it, whatever the
    # hour (one that began yesterday evening still covers the small hours).
    began = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    agent = start(
        agents,
        tmp_path,
        hooks_config(
            parts.hook(),
            f"""maintenance:
  - {{monitors: [maint], every: [daily], at: "{began:%H:%M}", duration: 3h}}
monitors:
  - {{name: parent, url: "{parts.other.url}", alerts: false}}
  - {{name: child, url: "{parts.service.url}", depends_on: [parent]}}
  - {{name: maint, url: "{parts.service.url}"}}
  - {{name: plain, url: "{parts.service.url}"}}
""",
        ),
    )
    names = ("parent", "child", "maint", "plain")
    wait_for(lambda: all(status(agent, n) == "ok" for n in names), 60, "every monitor ok")
    assert monitor(agent, "maint")["maintenance"] is True
    assert monitor(agent, "plain")["maintenance"] is False
    assert monitor(agent, "parent")["alert"] is None
    samples = agent.metrics()
    assert value(samples, "wsprobe_monitor_in_maintenance", monitor="maint") == 1
    assert value(samples, "wsprobe_monitor_in_maintenance", monitor="plain") == 0
    assert value(samples, "wsprobe_monitor_alert_firing", monitor="parent") is None
    page = agent.get("/")[2]
    assert page.count('data-maintenance="true"') == 1
    assert page.index('data-maintenance="true"') > page.index('id="maint"')

    parts.loop.run(parts.other.off())
    wait_for(lambda: status(agent, "parent") == "critical", 60, "the parent to fail")
    parts.loop.run(parts.service.off())
    # The control fires; the child and the one in maintenance fire too, and are held.
    wait_for(lambda: bool(titles_of(parts.receiver, "plain")), 60, "the control's firing")
    wait_for(
        lambda: alert_state(agent, "child") == alert_state(agent, "maint") == "firing",
        60,
        "the child and the one in maintenance firing",
    )
    more_runs(agent, "child", 5)
    assert parts.receiver.titles() == ["[FIRING] plain is CRITICAL"]

    # The parent recovers while the child still fails: the child's firing goes now.
    parts.loop.run(parts.other.on())
    wait_for(lambda: status(agent, "parent") == "ok", 60, "the parent to recover")
    wait_for(lambda: bool(titles_of(parts.receiver, "child")), 60, "the child's firing")
    parts.loop.run(parts.service.on())
    wait_for(
        lambda: (
            len(titles_of(parts.receiver, "child")) == len(titles_of(parts.receiver, "plain")) == 2
        ),
        60,
        "the resolved of the child and of the control",
    )
    wait_for(lambda: alert_state(agent, "maint") == "ok", 60, "maint to resolve")
    more_runs(agent, "maint", 3)
    for name in ("child", "plain"):
        assert titles_of(parts.receiver, name) == [
            f"[FIRING] {name} is CRITICAL",
            f"[RESOLVED] {name} is OK again",
        ]
    assert titles_of(parts.receiver, "maint") == []
    assert agent.stop() == 0


def _alertmanager_alerts(url: str) -> list[dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=10) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError):
        return None
    return [alert for alert in body if alert["labels"].get("monitor") == "api"]


def test_alertmanager_shows_the_alert_active_then_gone(
    parts: Parts, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    with alertmanager(tmp_path) as url:
        wait_for(lambda: _alertmanager_alerts(url) == [], 60, "Alertmanager to answer")
        agent = start(
            agents,
            tmp_path,
            f"""
defaults: {{interval: 0.2s, timeout: 2s}}
notifiers: {{am: {{alertmanager: ["{url}"]}}}}
alerting: {{notify: [am], failure_threshold: 1, success_threshold: 1}}
monitors: [{{name: api, url: "{parts.service.url}", labels: {{team: core}}}}]
""",
        )
        wait_for(lambda: status(agent, "api") == "ok", 60, "api to be ok")
        parts.loop.run(parts.service.off())
        active = wait_for(
            lambda: (
                [a for a in _alertmanager_alerts(url) or [] if a["status"]["state"] == "active"]
                or None
            ),
            60,
            "the alert to be active",
        )
        assert active[0]["labels"] == {
            "alertname": "WebSocketMonitorFailing",
            "monitor": "api",
            "severity": "critical",
            "team": "core",
        }
        assert active[0]["generatorURL"] == f"{agent.url}#api"
        parts.loop.run(parts.service.on())
        wait_for(lambda: _alertmanager_alerts(url) == [], 60, "the alert to be gone")
        assert agent.stop() == 0


def _test_notify(config: Path, name: str) -> subprocess.Popen[str]:
    """``wsprobe agent CONFIG --test-notify NAME``, started."""
    return subprocess.Popen(
        [sys.executable, "-m", "wsprobe", "agent", str(config), "--test-notify", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ended(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """The exit status, standard output and error of ``process``, once it ended."""
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_test_notify_exits_zero_or_says_why_in_one_line(parts: Parts, tmp_path: Path) -> None:
    port = parts.loop.run(parts.receiver.start())
    down = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""
notifiers:
  good: {{urls: ["json://127.0.0.1:{port}/"]}}
  dead: {{urls: ["json://u:dead-secret@127.0.0.1:{down}/"]}}
"""
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text('notifiers: {bad: {urls: ["nosuchscheme://u:bad-secret@host/"]}}\n')
    # The four run at once: each is a process of its own, most of whose time is loading.
    started = [
        _test_notify(config, "good"),
        _test_notify(config, "dead"),
        _test_notify(config, "nosuch"),
        _test_notify(broken, "bad"),
    ]
    sent, dead, unknown, refused = (_ended(process) for process in started)
    assert sent == (0, "wsprobe agent: test notification sent through good\n", "")
    assert parts.receiver.titles() == ["[TEST] wsprobe test notification"]

    assert dead[0] == 1
    assert dead[2].startswith(
        f"wsprobe agent: test notification failed: json://u:****@127.0.0.1:{down}"
    )
    assert dead[2].count("\n") == 1
    assert "dead-secret" not in dead[2]

    assert (unknown[0], unknown[2]) == (
        1,
        "wsprobe agent: test notification failed: no notifier 'nosuch' (configured: dead, good)\n",
    )

    assert (refused[0], refused[2]) == (
        2,
        f"wsprobe agent: {broken}: notifiers.bad.urls[0]: not a URL Apprise can send to "
        '("nosuchscheme"://…)\n',
    )
    assert len(parts.receiver.bodies) == 1
