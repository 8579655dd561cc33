"""Alerts sent to a real Prometheus Alertmanager (Debian's, which make test installs)."""

from __future__ import annotations

import asyncio
import datetime
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.alerting import alerting_config, eventually, free_port
from wsprobe.agent.alerting.deliver import Retry
from wsprobe.agent.alerting.engine import Run
from wsprobe.agent.alerting.service import Alerting
from wsprobe.plugin import State

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
CONFIG = """
route: {receiver: blackhole, group_wait: 1s}
receivers: [{name: blackhole}]
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """An Alertmanager on a free loopback port, alone (no cluster): its URL."""
    if not Path(BINARY).is_file():
        pytest.fail(f"{BINARY} is missing: make test installs prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    port = free_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


async def api_alerts(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]] | None:
    """The alerts of monitor ``api`` Alertmanager lists; ``None`` while it does not answer."""
    try:
        async with session.get(f"{url}/api/v2/alerts") as response:
            if response.status != 200:
                return None
            body = await response.json()
    except aiohttp.ClientError:
        return None
    assert isinstance(body, list)
    return [alert for alert in body if alert["labels"].get("monitor") == "api"]


def rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_an_alert_is_active_in_alertmanager_then_resolved(
    alertmanager: str, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    log: list[str] = []
    seen: dict[str, list[dict[str, Any]]] = {}
    start = float(int(time.time()))

    async def scenario() -> None:
        config = alerting_config(
            {
                # Every URL gets every alert: one Alertmanager of the pair is down.
                "notifiers": {"am": {"alertmanager": [alertmanager, down]}},
                "alerting": {
                    "notify": ["am"],
                    "failure_threshold": 1,
                    "success_threshold": 1,
                    "page_url": "http://agent.example:9814/",
                },
                "monitors": [{"name": "api"}],
            }
        )
        alerting = Alerting(
            config,
            tmp_path / "state",
            log=log.append,
            labels={"api": [("team", "core")]},
            retry=Retry(first=0.1, cap=0.5),
            refresh_every=0.3,
            timeout=5.0,
        )
        async with aiohttp.ClientSession() as session:
            latest: list[dict[str, Any]] = []

            async def listed(state: str | None) -> bool:
                found = await api_alerts(session, alertmanager)
                if found is None:
                    return False
                latest[:] = found
                if state is None:
                    return not found
                return len(found) == 1 and found[0]["status"]["state"] == state

            await eventually(lambda: listed(None), "Alertmanager to answer")
            await alerting.start()
            try:
                alerting.observe("api", Run(State.CRITICAL, start, error="refused", value=3))
                await eventually(lambda: listed("active"), "the alert to be active")
                seen["firing"] = list(latest)
                first_end = latest[0]["endsAt"]

                async def refreshed() -> bool:
                    return await listed("active") and latest[0]["endsAt"] != first_end

                await eventually(refreshed, "the alert to be sent again")
                seen["refreshed"] = list(latest)
                alerting.observe("api", Run(State.OK, start + 1))
                await eventually(lambda: listed(None), "the alert to be resolved")
                assert alerting.notifications()[("am", "failed")] >= 1
            finally:
                await alerting.close()

    asyncio.run(scenario())
    alert = seen["firing"][0]
    assert alert["labels"] == {
        "alertname": "WebSocketMonitorFailing",
        "monitor": "api",
        "severity": "critical",
        "team": "core",
    }
    assert alert["annotations"] == {
        "summary": "[FIRING] api is CRITICAL",
        "error": "refused",
        "value": "3",
    }
    assert alert["startsAt"] == rfc3339(start)
    assert alert["generatorURL"] == "http://agent.example:9814/#api"
    assert seen["refreshed"][0]["startsAt"] == rfc3339(start)
    assert any(
        line.startswith(f"alerts: cannot send firing of api to am ({down}), again in 0.1s: ")
        for line in log
    )
