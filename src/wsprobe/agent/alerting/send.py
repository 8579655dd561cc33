"""Sending one notice to one destination: through Apprise, or to Alertmanager's API.

Both raise :class:`DeliveryError` with a one-line reason that shows no secret (a
destination is named by its privacy form). Apprise is blocking: it runs on a
thread of the caller's executor, within a time limit.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from ...errors import Error
from .config import Destination, Notifier
from .notice import FIRING, REMINDER, RESOLVED, TEST, Notice
from .renderer import render_bounded
from .template import MAX_BODY, MAX_TITLE, when

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ALERTNAME",
    "FIRING_FOR",
    "DeliveryError",
    "alertmanager_alerts",
    "body_text",
    "send_alertmanager",
    "send_apprise",
    "title_text",
]

ALERTNAME = "WebSocketMonitorFailing"
TEST_ALERTNAME = "WsprobeTestNotification"
#: How long Alertmanager keeps a firing alert without hearing of it again: four
#: re-sends, as Prometheus does, so a live alert never ends on its own.
FIRING_FOR = 240.0

# Apprise logs through the "apprise" logger; without a handler, Python's last-resort
# one would print its warnings on the agent's stderr.
logging.getLogger("apprise").addHandler(logging.NullHandler())

_HEADLINES = {
    FIRING: "{monitor} is {state}",
    REMINDER: "{monitor} is still {state}",
    RESOLVED: "{monitor} is OK again",
    TEST: "wsprobe test notification",
}


class DeliveryError(Error):
    """A notice did not reach a destination; the message says which and why."""


def title_text(fields: Mapping[str, Any]) -> str:
    """The default title: ``[FIRING] api is critical``."""
    headline = _HEADLINES[fields["kind"]].format(
        monitor=fields["monitor"], state=str(fields["state"]).upper()
    )
    return f"[{str(fields['kind']).upper()}] {headline}"


def body_text(fields: Mapping[str, Any]) -> str:
    """The default body: monitor, state, error, value, since when, and the link."""
    if fields["kind"] == TEST:
        return "This is a test notification from wsprobe agent: this notifier works."
    lines = [
        f"Monitor: {fields['monitor']}",
        f"State: {fields['state']}",
        f"Severity: {fields['severity']}",
    ]
    if fields.get("error"):
        lines.append(f"Error: {fields['error']}")
    if fields.get("value") is not None:
        lines.append(f"Value: {fields['value']}")
    lines.append(f"Failing since: {when(fields['since'])}")
    if fields["kind"] == RESOLVED:
        lines.append(f"Resolved at: {when(fields['at'])}")
    if fields.get("link"):
        lines.append(f"Details: {fields['link']}")
    return "\n".join(lines)


def notify_type(notice: Notice) -> str:
    """Apprise's type: ``failure`` for critical, ``warning``, ``success`` when resolved."""
    if notice.kind == RESOLVED:
        return "success"
    if notice.kind == TEST:
        return "info"
    return "warning" if notice.severity == "warning" else "failure"


async def send_apprise(
    destination: Destination,
    notifier: Notifier,
    notice: Notice,
    *,
    executor: Executor,
    timeout: float,
) -> None:
    """Send ``notice`` through Apprise to ``destination`` within ``timeout`` seconds."""
    fields = notice.fields()
    (title, title_problem), (body, body_problem) = await render_bounded(
        [(notifier.title, title_text, MAX_TITLE), (notifier.body, body_text, MAX_BODY)], fields
    )
    for field, problem in (("title", title_problem), ("body", body_problem)):
        if problem is not None:
            body += f"\n(the notifier's {field} template failed: {problem})"
    loop = asyncio.get_running_loop()
    call = loop.run_in_executor(
        executor, _notify, destination.url, title, body, notify_type(notice)
    )
    try:
        sent = await asyncio.wait_for(call, timeout)
    except TimeoutError:
        raise DeliveryError(f"{destination.shown}: no answer within {timeout:g}s") from None
    if not sent:
        raise DeliveryError(f"{destination.shown}: Apprise could not send")


def _notify(url: str, title: str, body: str, kind: str) -> bool:
    from apprise import Apprise

    # One Apprise object a call: calls for one destination may overlap on threads.
    apprise = Apprise()
    if not apprise.add(url):
        return False
    return bool(apprise.notify(body=body, title=title, notify_type=kind))


def alertmanager_alerts(notice: Notice, now: float) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for ``notice`` at Unix time ``now``."""
    test = notice.kind == TEST
    labels = {
        **dict(notice.labels),
        "alertname": TEST_ALERTNAME if test else ALERTNAME,
        "monitor": notice.monitor,
        "severity": "info" if test else notice.severity,
    }
    annotations = {"summary": title_text(notice.fields())}
    if notice.error:
        annotations["error"] = notice.error
    if notice.value is not None:
        annotations["value"] = str(notice.value)
    # A resolved alert ends in the past, or Alertmanager keeps the firing one's end.
    ends = min(notice.at, now) if notice.kind == RESOLVED else now + FIRING_FOR
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(notice.since),
        "endsAt": _rfc3339(max(ends, notice.since)),
    }
    if notice.link:
        alert["generatorURL"] = notice.link
    return [alert]


async def send_alertmanager(
    destination: Destination,
    notice: Notice,
    *,
    session: aiohttp.ClientSession,
    timeout: float,
    now: float,
) -> None:
    """``POST`` ``notice`` to ``destination``'s ``/api/v2/alerts`` within ``timeout``."""
    import aiohttp

    url = f"{destination.url}/api/v2/alerts"
    try:
        async with session.post(
            url,
            json=alertmanager_alerts(notice, now),
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            if response.status // 100 != 2:
                raise DeliveryError(f"{destination.shown}: HTTP {response.status}")
    except TimeoutError:
        raise DeliveryError(f"{destination.shown}: no answer within {timeout:g}s") from None
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"{destination.shown}: {_client_error(exc)}") from None


def _client_error(exc: BaseException) -> str:
    import aiohttp

    # Connection errors name the host and port, never the URL's credentials.
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        return f"cannot connect: {os.strerror(error.errno) if error.errno else error}".lower()
    return type(exc).__name__


def _rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
