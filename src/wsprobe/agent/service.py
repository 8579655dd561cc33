"""The agent's life: load the configuration, run the monitors, serve HTTP, obey signals.

SIGHUP reloads the configuration (a broken one is reported and the running one
kept); SIGTERM and SIGINT stop scheduling, give checks in flight a few seconds,
write the history, stop the script workers and return. Every state change of a
monitor is one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..errors import Error
from ..lua.job import RunSettings
from ..lua.supervisor import Supervisor
from ..options import Options
from .board import RECENT, Board
from .checks import run_check
from .config import AgentConfig, ConfigError, Monitor, load_config, parse_listen
from .history import History, HistoryError
from .metrics import AgentFacts, MonitorRow
from .outcome import Outcome
from .scheduler import Scheduler
from .sharding import Shard

__all__ = ["STOP_GRACE", "Agent", "AgentError", "serve"]

#: Seconds SIGTERM leaves checks in flight before cutting them.
STOP_GRACE = 5.0
_FLUSH_EVERY = 1.0


class AgentError(Error):
    """The agent cannot start: it cannot listen, or cannot use its state directory."""


class Agent:
    """The monitors of one configuration file (this shard's share), their results and
    the reloads. ``log`` receives one line per event worth telling an operator.

    Scripts run in the worker processes of one :class:`~wsprobe.lua.supervisor.Supervisor`
    for the agent's life (the configuration's ``workers``; a reload keeps them), as
    ``wsprobe run``'s do: a script stuck in C code or crashing its worker fails alone.
    The workers keep the scripts' store in ``state_dir``; the supervisor holds their one
    cache. :meth:`start` starts the workers, :meth:`close` stops them.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        state_dir: Path,
        shard: Shard,
        log: Callable[[str], None],
    ) -> None:
        self.config_path = config_path
        self.shard = shard
        self.log = log
        self.config = load_config(config_path)
        self.history = History(state_dir, retention=self.config.retention)
        # Each script brings its own time limit, environment and call options (its
        # Job's); these settings hold what the agent's scripts share.
        settings = RunSettings(
            options=Options(),
            state_dir=state_dir,
            concurrency=self.config.concurrency,
            workers=self.config.workers,
        )
        self.supervisor = Supervisor(settings)
        self.board = Board()
        self.reloads: Counter[str] = Counter()
        self.last_reload_ok = True
        self.scheduler = Scheduler(
            run=self._run,
            record=self._record,
            skipped=lambda monitor, count: self.board.skip(monitor.name, count),
            concurrency=self.config.concurrency,
        )
        self._apply(self.config)

    @property
    def shard_text(self) -> str | None:
        """``"I/N"`` when sharded."""
        return f"{self.shard.index}/{self.shard.count}" if self.shard.count > 1 else None

    def reload(self) -> bool:
        """Read the configuration again; keep the running one when it is broken."""
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self.reloads["failure"] += 1
            self.last_reload_ok = False
            self.log(f"reload failed, keeping the running configuration: {exc}")
            return False
        if config.listen != self.config.listen:
            self.log("reload: a new listen address applies only after a restart")
        if config.workers != self.config.workers:
            self.log("reload: a new number of workers applies only after a restart")
            config = dataclasses.replace(config, workers=self.config.workers)
        self.history.retention = config.retention
        self.scheduler.set_concurrency(config.concurrency)
        self.supervisor.set_concurrency(config.concurrency)
        self.config = config
        started, stopped = self._apply(config)
        self.reloads["success"] += 1
        self.last_reload_ok = True
        self.log(
            f"reloaded: {len(self.board)} monitors "
            f"({len(started)} started, {len(stopped)} stopped)"
        )
        return True

    def monitor_rows(self) -> list[MonitorRow]:
        """Each configured monitor for ``/metrics``: a snapshot, safe to read on a thread."""
        return [
            MonitorRow(
                {"monitor": entry.monitor.name, **dict(entry.monitor.labels)},
                entry.last,
                dict(entry.runs),
                entry.skipped,
            )
            for entry in self.board.entries()
        ]

    def facts(self) -> AgentFacts:
        """The agent's own state for ``/metrics``."""
        return AgentFacts(
            monitors=len(self.board),
            in_flight=self.scheduler.in_flight,
            reloads=dict(self.reloads),
            last_reload_ok=self.last_reload_ok,
        )

    async def probe(
        self,
        name: str,
        target: str,
        *,
        timeout: float | None,
        log: Callable[[str], None] | None = None,
    ) -> Outcome:
        """One check of ``target`` with the module ``name`` now, within ``timeout`` when given."""
        module = self.config.modules[name]
        if timeout is not None and timeout < module.timeout:
            options = dataclasses.replace(module.options, timeout=timeout)
            module = dataclasses.replace(module, options=options)
        return await run_check(
            module, name=name, target=target, supervisor=self.supervisor, log=log
        )

    async def start(self) -> None:
        """Start the script workers (a script due before waits for them)."""
        await self.supervisor.start()

    async def close(self, grace: float) -> None:
        """Stop the monitors (``grace`` seconds for checks in flight), write the history
        and stop the workers (a script still running ends ``interrupted``)."""
        cut = await self.scheduler.stop(grace)
        if cut:
            self.log(f"stopped {cut} checks still running after {grace:g}s")
        try:
            self.history.close()
        finally:
            await self.supervisor.close()

    def _apply(self, config: AgentConfig) -> tuple[list[str], list[str]]:
        mine = [monitor for monitor in config.monitors if self.shard.owns(monitor.name)]
        known = {
            monitor.name: self.history.results(monitor.name, limit=RECENT)
            for monitor in mine
            if self.board.get(monitor.name) is None
        }
        self.board.configure(mine, known)
        return self.scheduler.update(mine)

    async def _run(self, monitor: Monitor) -> Outcome:
        return await run_check(
            monitor.probe,
            name=monitor.name,
            target=monitor.url,
            supervisor=self.supervisor,
            output=functools.partial(self.board.write, monitor.name),
        )

    def _record(self, monitor: Monitor, outcome: Outcome) -> None:
        outcome = self.board.settle(monitor.name, outcome)
        self.history.add(monitor.name, outcome)
        change = self.board.record(monitor.name, outcome)
        if change is None:
            return
        before, after = change
        was = before.name.lower() if before is not None else "new"
        why = f": {outcome.error}" if outcome.error else ""
        self.log(f"monitor {monitor.name}: {was} -> {after.name.lower()}{why}")


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
    from aiohttp import web

    from .http import make_app

    host, port = parse_listen(listen) if listen else (None, None)
    try:
        agent = Agent(config_path, state_dir=state_dir, shard=shard, log=log)
    except HistoryError as exc:
        raise AgentError(str(exc)) from exc
    await agent.start()
    if host is None:
        host, port = parse_listen(agent.config.listen, where="listen")
    runner = web.AppRunner(make_app(agent), access_log=None, handle_signals=False)
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
    total = len(agent.config.monitors)
    where = f", shard {agent.shard_text}" if agent.shard_text else ""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, agent.reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Said once the signals are ours: from this line on, SIGHUP reloads and never kills.
    log(f"listening on {url} ({len(agent.board)} of {total} monitors{where})")
    flusher = asyncio.create_task(_flush_forever(agent))
    try:
        await stop.wait()
        log("stopping")
    finally:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await agent.close(STOP_GRACE)
        await runner.cleanup()
    log("stopped")


async def _flush_forever(agent: Agent) -> None:
    failing = False
    while True:
        await asyncio.sleep(_FLUSH_EVERY)
        try:
            agent.history.flush()
        except HistoryError as exc:
            if not failing:
                agent.log(str(exc))
            failing = True
        else:
            if failing:
                agent.log("history is written again")
            failing = False


def _bound_port(runner: object, asked: int | None) -> int:
    from aiohttp import web

    assert isinstance(runner, web.AppRunner)
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked or 0
