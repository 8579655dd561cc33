"""``wsprobe agent``'s wiring: the agent, its HTTP interface, its signals, its flushes.

SIGHUP reloads the configuration (signals during a reload make one more); SIGTERM
and SIGINT stop scheduling, give checks in flight a few seconds, write the history
(a bounded wait), stop the script workers and return.
The process's cycle collector follows :class:`~wsprobe.lua.collector.Collector`, as a
script worker's does: start-up frozen, full collections only past a bound, never
whenever CPython's default would walk the boards and caches of the whole agent; a
reload unfreezes, collects and freezes again (the old configuration's cycles freed).
The parts know nothing of each other: the :class:`~.service.Agent` (monitors,
probers, board, history) is shown to :mod:`.http` as an :class:`~.http.AgentView`
made here.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..lua.collector import Collector
from .alerting.service import send_test_notification
from .config import load_config, parse_listen
from .history import HistoryError
from .http import AgentView, make_app
from .service import Agent, AgentError
from .sharding import Shard

__all__ = ["COLLECT_EVERY", "STOP_GRACE", "TEST_NOTIFY_TIMEOUT", "serve", "test_notify", "view_of"]

#: Seconds between two looks of the collector policy at the old generation.
COLLECT_EVERY = 1.0

#: Seconds SIGTERM leaves checks in flight before cutting them.
STOP_GRACE = 5.0
#: Seconds ``--test-notify`` gives each of a notifier's URLs.
TEST_NOTIFY_TIMEOUT = 30.0


def view_of(agent: Agent) -> AgentView:
    """What the HTTP interface may see of ``agent``."""
    return AgentView(
        entries=agent.board.entries,
        entry=agent.board.get,
        results=lambda name, since, limit: agent.history.results(name, since=since, limit=limit),
        module=agent.module,
        probe=lambda name, target, timeout, log: agent.probe(
            name, target, timeout=timeout, log=log
        ),
        snapshot=lambda: (agent.monitor_rows(), agent.facts()),
        shard=lambda: agent.shard_text,
        log=agent.log,
        uptimes=agent.history.uptimes,
        windows=agent.history.windows,
        incidents=agent.history.incidents,
        page=lambda: agent.config.page,
        alert=agent.alert_status,
    )


async def serve(
    config_path: Path,
    *,
    listen: str | None,
    state_dir: Path,
    shard: Shard,
    log: Callable[[str], None],
) -> None:
    """Run the agent until SIGTERM or SIGINT; log ``listening on URL`` once it listens.

    Raises :class:`ConfigError` for a bad configuration and :class:`AgentError` when
    the agent cannot listen or open its state.
    """
    host, port = parse_listen(listen) if listen else (None, None)
    collector = Collector()
    agent = Agent(config_path, state_dir=state_dir, shard=shard, log=log, reloaded=collector.renew)
    try:
        await agent.start()
    except (HistoryError, AgentError) as exc:
        await agent.close(0)
        raise AgentError(str(exc)) from exc
    log = agent.log
    if host is None:
        host, port = parse_listen(agent.config.listen, where="listen")
    runner = web.AppRunner(make_app(view_of(agent)), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await agent.close(0)
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise AgentError(f"cannot listen on {host}:{port}: {reason}") from exc
    bound = _bound_port(runner, port)
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound}/"
    agent.listening(url)
    total = len(agent.config.monitors)
    where = f", shard {agent.shard_text}" if agent.shard_text else ""
    # The agent is never idle (a thousand monitors always have a check in flight):
    # full collections come past the bound only.
    collector.install()
    loop = asyncio.get_running_loop()
    collecting: asyncio.TimerHandle

    def collect() -> None:
        nonlocal collecting
        collector.tick(idle=False)
        collecting = loop.call_later(COLLECT_EVERY, collect)

    collecting = loop.call_later(COLLECT_EVERY, collect)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, agent.request_reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Said once the signals are ours: from this line on, SIGHUP reloads and never kills.
    log(f"listening on {url} ({len(agent.board)} of {total} monitors{where})")
    try:
        await stop.wait()
        log("stopping")
    finally:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        collecting.cancel()
        await agent.close(STOP_GRACE)
        await runner.cleanup()
    log("stopped")


async def test_notify(config_path: Path, name: str) -> str | None:
    """Send a test notification through the notifier ``name`` of the configuration at
    ``config_path``: ``None`` when every URL took it, else one line saying why not.
    Raises :class:`ConfigError` for a bad configuration."""
    config = load_config(config_path)
    return await send_test_notification(config.alerting, name, timeout=TEST_NOTIFY_TIMEOUT)


def _bound_port(runner: web.AppRunner, asked: int | None) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked or 0
