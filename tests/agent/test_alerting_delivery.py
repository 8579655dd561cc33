"""Notifications delivered for real: Apprise to an HTTP receiver and an SMTP server,
through the SQLite outbox, with a receiver down, restarts, and injected faults."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.alerting import Mailbox, Receiver, alerting_config, free_port, until
from wsprobe.agent.alerting import deliver, send
from wsprobe.agent.alerting.config import AlertingConfig
from wsprobe.agent.alerting.deliver import Retry
from wsprobe.agent.alerting.engine import Run
from wsprobe.agent.alerting.outbox import DATABASE_NAME
from wsprobe.agent.alerting.service import Alerting, send_test_notification
from wsprobe.plugin import State

FAST = Retry(first=0.05, cap=0.2, give_up=3600.0)
CRIT = State.CRITICAL
OK = State.OK


def hooks(port: int, **alerting: Any) -> AlertingConfig:
    return alerting_config(
        {
            "notifiers": {"hooks": {"urls": [f"json://user:hook-secret@127.0.0.1:{port}/hook"]}},
            "alerting": {"notify": ["hooks"], "failure_threshold": 2, "success_threshold": 1}
            | alerting,
            "monitors": [{"name": "api", "labels": {"team": "core"}}, {"name": "gw"}],
        }
    )


async def running(
    config: AlertingConfig,
    state_dir: Path,
    log: list[str],
    work: Callable[[Alerting], Awaitable[None]],
    **options: Any,
) -> None:
    alerting = Alerting(config, state_dir, log=log.append, retry=FAST, timeout=5.0, **options)
    await alerting.start()
    try:
        await work(alerting)
    finally:
        await alerting.close()


def runs(alerting: Alerting, monitor: str, *states: State, start: float = 1000.0) -> None:
    for index, state in enumerate(states):
        error = None if state is OK else "connection refused"
        alerting.observe(monitor, Run(state, start + index, error=error, value=7))


def test_one_firing_and_one_resolved_per_outage(tmp_path: Path) -> None:
    receiver = Receiver()
    log: list[str] = []

    async def scenario() -> None:
        port = await receiver.start()

        async def work(alerting: Alerting) -> None:
            runs(alerting, "api", OK, CRIT, CRIT, CRIT, CRIT)
            await until(lambda: len(receiver.bodies) == 1, "the firing")
            assert alerting.status("api", 0.0) == {
                "alert": {"state": "firing", "since": 1002.0},
                "maintenance": False,
            }
            runs(alerting, "api", OK, OK, start=2000.0)
            await until(lambda: len(receiver.bodies) == 2, "the resolved")
            await until(lambda: alerting.queue_length() == 0, "an empty outbox")
            assert alerting.notifications() == {("hooks", "sent"): 2}

        try:
            await running(hooks(port), tmp_path, log, work)
        finally:
            await receiver.stop()

    asyncio.run(scenario())
    assert receiver.titles() == ["[FIRING] api is CRITICAL", "[RESOLVED] api is OK again"]
    assert [body["type"] for body in receiver.bodies] == ["failure", "success"]
    firing = receiver.bodies[0]["message"]
    assert firing.splitlines() == [
        "Monitor: api",
        "State: critical",
        "Severity: critical",
        "Error: connection refused",
        "Value: 7",
        "Failing since: 1970-01-01 00:16:41 UTC",
    ]
    assert "Resolved at: 1970-01-01 00:33:20 UTC" in receiver.bodies[1]["message"]
    assert receiver.paths == ["/hook", "/hook"]
    sent = [line for line in log if line.startswith("alerts: sent")]
    assert sent == [
        f"alerts: sent firing of api to hooks (json://user:****@127.0.0.1:{receiver.port}/hook)",
        f"alerts: sent resolved of api to hooks (json://user:****@127.0.0.1:{receiver.port}/hook)",
    ]
    assert not any("hook-secret" in line for line in log)


def test_a_receiver_down_gets_the_firing_later_then_the_resolved(tmp_path: Path) -> None:
    receiver = Receiver()
    log: list[str] = []
    port = free_port()

    async def scenario() -> None:
        async def work(alerting: Alerting) -> None:
            runs(alerting, "api", CRIT, CRIT, OK, CRIT, CRIT, OK)
            runs(alerting, "gw", CRIT, CRIT, start=1100.0)
            await until(
                lambda: alerting.notifications().get(("hooks", "failed"), 0) >= 6,
                "failed attempts",
            )
            assert receiver.bodies == []
            assert alerting.queue_length() == 5
            await receiver.start(port)
            await until(lambda: len(receiver.bodies) == 5, "every notice")

        try:
            await running(hooks(port), tmp_path, log, work)
        finally:
            await receiver.stop()

    asyncio.run(scenario())
    api = [t for t in receiver.titles() if " api " in t]
    assert api == [
        "[FIRING] api is CRITICAL",
        "[RESOLVED] api is OK again",
        "[FIRING] api is CRITICAL",
        "[RESOLVED] api is OK again",
    ]
    assert [t for t in receiver.titles() if " gw " in t] == ["[FIRING] gw is CRITICAL"]
    failures = [line for line in log if line.startswith("alerts: cannot send firing of api")]
    assert failures[0].startswith(
        f"alerts: cannot send firing of api to hooks (json://user:****@127.0.0.1:{port}/hook), again in 0.05s: "
    )
    assert not any("hook-secret" in line for line in log)


def test_a_restart_mid_outage_does_not_fire_twice_and_still_resolves(tmp_path: Path) -> None:
    receiver = Receiver()
    log: list[str] = []

    async def scenario() -> None:
        port = await receiver.start()
        receiver.status = 503

        async def first(alerting: Alerting) -> None:
            runs(alerting, "api", CRIT, CRIT)
            await until(lambda: ("hooks", "failed") in alerting.notifications(), "a failure")

        async def second(alerting: Alerting) -> None:
            # The firing queued before the restart is still sent; the outage goes on.
            receiver.status = 200
            runs(alerting, "api", CRIT, CRIT, CRIT, start=3000.0)
            await until(lambda: len(receiver.bodies) == 1, "the firing")
            assert alerting.status("api", 0.0)["alert"] == {"state": "firing", "since": 1001.0}

        async def third(alerting: Alerting) -> None:
            runs(alerting, "api", CRIT, OK, start=4000.0)
            await until(lambda: len(receiver.bodies) == 2, "the resolved")

        try:
            await running(hooks(port), tmp_path, log, first)
            await running(hooks(port), tmp_path, log, second)
            await running(hooks(port), tmp_path, log, third)
        finally:
            await receiver.stop()

    asyncio.run(scenario())
    assert receiver.titles() == ["[FIRING] api is CRITICAL", "[RESOLVED] api is OK again"]
    assert (tmp_path / DATABASE_NAME).is_file()


def test_an_unexpected_fault_fails_one_delivery_and_the_deliverer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    log: list[str] = []
    real = send.send_apprise
    faults = {"api": 1}

    async def faulty(*args: Any, **kwargs: Any) -> None:
        notice = args[2]
        if faults.get(notice.monitor):
            faults[notice.monitor] -= 1
            raise RuntimeError("injected https://user:leaked@example/")
        await real(*args, **kwargs)

    monkeypatch.setattr(deliver, "send_apprise", faulty)

    async def scenario() -> None:
        port = await receiver.start()

        async def work(alerting: Alerting) -> None:
            # Rows that are not notices, or for a notifier no longer configured, are dropped.
            with sqlite3.connect(tmp_path / DATABASE_NAME) as db:
                db.execute(
                    "INSERT INTO alert_outbox (destination, monitor, notice, created, next_at) "
                    "VALUES ('hooks/0000', 'x', '{}', 0, 0), (?, 'y', 'not json', 0, 0)",
                    (next(iter(alerting.engine.config.notifiers["hooks"].destinations)).key,),
                )
            runs(alerting, "api", CRIT, CRIT)
            runs(alerting, "gw", CRIT, CRIT)
            await until(lambda: len(receiver.bodies) == 2, "both firings")
            await until(lambda: alerting.queue_length() == 0, "an empty outbox")

        try:
            await running(hooks(port), tmp_path, log, work)
        finally:
            await receiver.stop()

    asyncio.run(scenario())
    assert sorted(receiver.titles()) == ["[FIRING] api is CRITICAL", "[FIRING] gw is CRITICAL"]
    assert "alerts: dropped a notice for x: its notifier is gone" in log
    assert "alerts: dropped an unreadable notice for y" in log
    fault = [line for line in log if "unexpected" in line]
    assert fault == [
        f"alerts: cannot send firing of api to hooks (json://user:****@127.0.0.1:{receiver.port}/hook), "
        f"again in 0.05s: json://user:****@127.0.0.1:{receiver.port}/hook: unexpected RuntimeError"
    ]


def test_maintenance_and_a_failing_parent_hold_notifications_back(tmp_path: Path) -> None:
    receiver = Receiver()
    log: list[str] = []

    async def scenario() -> None:
        port = await receiver.start()
        config = alerting_config(
            {
                "notifiers": {"hooks": {"urls": [f"json://127.0.0.1:{port}/"]}},
                "alerting": {"notify": ["hooks"], "failure_threshold": 1, "success_threshold": 1},
                "monitors": [{"name": "api", "depends_on": ["gw"]}, {"name": "gw"}],
                "maintenance": [
                    {"monitors": ["gw"], "start": "1970-01-01T00:00:00Z", "duration": "1h"}
                ],
            }
        )

        async def work(alerting: Alerting) -> None:
            runs(alerting, "gw", CRIT)  # in maintenance: held
            runs(alerting, "api", CRIT, start=1001.0)  # its parent fails: held
            assert alerting.status("gw", 1000.0) == {
                "alert": {"state": "firing", "since": 1000.0},
                "maintenance": True,
            }
            runs(alerting, "gw", OK, start=1002.0)
            runs(alerting, "api", CRIT, start=1003.0)  # fires now
            await until(lambda: len(receiver.bodies) == 1, "the child's firing")
            await asyncio.sleep(0.3)

        try:
            await running(config, tmp_path, log, work)
        finally:
            await receiver.stop()

    asyncio.run(scenario())
    assert receiver.titles() == ["[FIRING] api is CRITICAL"]


def test_mail_through_a_real_smtp_server_and_templates(tmp_path: Path) -> None:
    mailbox = Mailbox("wsprobe", "mail-secret")
    log: list[str] = []

    async def scenario() -> None:
        port = await mailbox.start()
        url = (
            f"mailto://wsprobe:mail-secret@127.0.0.1:{port}"
            "?to=ops@example.com&from=wsprobe@example.com"
        )
        config = alerting_config(
            {
                "notifiers": {
                    "oncall": {
                        "urls": [url],
                        "title": "{{ monitor | upper }} {{ kind }} ({{ labels.team }})",
                        "body": "{{ error }} since {{ since | when }} {{ 1 / 0 }}",
                    }
                },
                "alerting": {"notify": ["oncall"], "failure_threshold": 1},
                "monitors": [{"name": "api", "labels": {"team": "core"}}],
            }
        )

        async def work(alerting: Alerting) -> None:
            runs(alerting, "api", CRIT)
            await until(lambda: len(mailbox.messages) == 1, "the mail")

        try:
            await running(config, tmp_path, log, work, labels={"api": [("team", "core")]})
        finally:
            await mailbox.stop()

    asyncio.run(scenario())
    mail = mailbox.messages[0]
    assert "Subject: API firing (core)" in mail
    assert "To: ops@example.com" in mail
    # The body's template failed: the default body, saying why, and the mail still went.
    assert "Error: connection refused" in mail
    assert "template failed: ZeroDivisionError: division by zero" in mail
    assert mailbox.logins == [(b"wsprobe", b"mail-secret")]
    assert not any("mail-secret" in line for line in log)


def test_test_notify_says_why_in_one_line_without_secrets(tmp_path: Path) -> None:
    receiver = Receiver()
    down = free_port()

    async def scenario() -> list[str | None]:
        port = await receiver.start()
        config = alerting_config(
            {
                "notifiers": {
                    "good": {"urls": [f"json://127.0.0.1:{port}/"]},
                    "dead": {"urls": [f"json://u:dead-secret@127.0.0.1:{down}/"]},
                    "am": {"alertmanager": [f"http://u:am-secret@127.0.0.1:{down}"]},
                }
            }
        )
        try:
            return [
                await send_test_notification(config, name, timeout=5.0)
                for name in ("good", "dead", "am", "nosuch")
            ]
        finally:
            await receiver.stop()

    good, dead, am, nosuch = asyncio.run(scenario())
    assert good is None
    assert receiver.titles() == ["[TEST] wsprobe test notification"]
    assert dead == f"json://u:****@127.0.0.1:{down}/: Apprise could not send"
    assert am == f"http://127.0.0.1:{down}: cannot connect: connection refused"
    assert nosuch == "no notifier 'nosuch' (configured: am, dead, good)"
