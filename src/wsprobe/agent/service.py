"""The agent's monitors: the configuration they come from, their schedule, their results.

:class:`Agent` holds this shard's monitors, runs each on its schedule with the
prober its check names, records each outcome on the board and in the history, and
reloads the configuration (a broken one is reported and the running one kept).
Every state change of a monitor is one log line. Each settled run goes to the
alerts (:class:`~.alerting.service.Alerting`), which decide and deliver apart from the
checks. It knows nothing of HTTP or signals: :mod:`.main` wires it to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import Error
from ..lua.job import RunSettings
from ..lua.result import REPEAT_PREVIOUS
from ..lua.supervisor import Supervisor, files_needed
from ..options import Options
from ..services.descriptors import open_file_limit, too_few_files
from .alerting.config import AlertingConfig
from .alerting.engine import FIRING_PHASE, Run
from .alerting.outbox import OutboxError
from .alerting.service import Alerting
from .board import RECENT, Board
from .budget import Budget
from .config import AgentConfig, ConfigError, Module, Monitor, load_config
from .faults import Faults
from .history import History, HistoryError
from .metrics import AgentFacts
from .outcome import Outcome
from .prober import Busy
from .probers import make_probers
from .scheduler import Scheduler
from .sharding import Shard

__all__ = ["HISTORY_WAIT", "Agent", "AgentError"]

#: Seconds a stop leaves the history to write what is queued (a held lock, a full disk).
HISTORY_WAIT = 10.0


class AgentError(Error):
    """The agent cannot start: it cannot listen, or cannot use its state directory."""


class Agent:
    """The monitors of one configuration file (this shard's share), their results and
    the reloads. ``log`` receives one line per event worth telling an operator,
    ``reloaded`` is called once a reload has replaced the configuration; an
    unexpected exception in any of the agent's work fails that unit alone
    (:class:`~.faults.Faults`), and a check that raises is UNKNOWN.

    Scripts run in the worker processes of one :class:`~wsprobe.lua.supervisor.Supervisor`
    for the agent's life (the configuration's ``workers``; a reload keeps them), as
    ``wsprobe run``'s do: a script stuck in C code or crashing its worker fails alone.
    The workers keep the scripts' store in ``state_dir``; the supervisor holds their one
    cache. The alerts keep their states and their outbox there too (a shard's apart:
    shards sharing a directory must not send each other's notices). :meth:`start`
    opens the history, starts the workers, the alerts' delivery and the monitors,
    :meth:`close` stops them.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        state_dir: Path,
        shard: Shard,
        log: Callable[[str], None],
        reloaded: Callable[[], None] = lambda: None,
    ) -> None:
        self.config_path = config_path
        self._on_reload = reloaded
        self.shard = shard
        self.faults = Faults(log)
        self.log = self.faults.log
        self.config = load_config(config_path)
        self.history = History(state_dir, retention=self.config.retention, faults=self.faults)
        # Each script brings its own time limit, environment and call options (its
        # Job's); these settings hold what the agent's scripts share.
        settings = RunSettings(
            options=Options(),
            state_dir=state_dir,
            concurrency=self.config.concurrency,
            workers=self.config.workers,
        )
        self.supervisor = Supervisor(settings)
        self.probers = make_probers(
            self.supervisor, functools.partial(self.faults.failed, "check")
        )
        self.board = Board()
        # Until the agent listens, links point at the configuration's address.
        self.page_url = f"http://{self.config.listen}/"
        alerts_dir = (
            state_dir if shard.count == 1 else state_dir / f"shard-{shard.index}-of-{shard.count}"
        )
        self.alerting = Alerting(
            self._alerting_config(self.config),
            alerts_dir,
            log=self.log,
            labels=_labels(self.config),
            fault=functools.partial(self.faults.failed, "notification"),
        )
        # The checks in flight, scheduled and /probe's together.
        self.budget = Budget(self.config.concurrency)
        self.reloads: Counter[str] = Counter()
        self.last_reload_ok = True
        # /probe's checks in flight, by module.
        self._probing: Counter[str] = Counter()
        self.scheduler = Scheduler(
            run=self._run,
            record=self._record,
            skipped=lambda monitor, count: self.board.skip(monitor.name, count),
            budget=self.budget,
            unit=self.faults.unit,
        )
        self._reload_wanted = asyncio.Event()
        self._reloading: asyncio.Task[None] | None = None

    @property
    def shard_text(self) -> str | None:
        """``"I/N"`` when sharded."""
        return f"{self.shard.index}/{self.shard.count}" if self.shard.count > 1 else None

    def request_reload(self) -> None:
        """Reload soon (SIGHUP): requests made while a reload runs make one more, not many."""
        self._reload_wanted.set()

    async def reload(self) -> bool:
        """Read the configuration again (on a thread); keep the running one when it is
        broken or cannot be applied (say why, count a failure)."""
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
            if config.workers != self.config.workers:
                config = dataclasses.replace(config, workers=self.config.workers)
                self.log("reload: a new number of workers applies only after a restart")
            if config.listen != self.config.listen:
                self.log("reload: a new listen address applies only after a restart")
            started, stopped = await self._apply(config)
        except (ConfigError, HistoryError) as exc:
            self._reloaded(False)
            self.log(f"reload failed, keeping the running configuration: {exc}")
            return False
        except Exception as exc:  # a failed reload, told once, never a dead agent
            self._reloaded(False)
            self.log(
                "reload failed, keeping the running configuration: internal error: "
                + self.faults.failed("reload", exc, tell=False)
            )
            return False
        self._reloaded(True)
        self._on_reload()
        self.log(
            f"reloaded: {len(self.board)} monitors "
            f"({len(started)} started, {len(stopped)} stopped)"
        )
        return True

    def listening(self, url: str) -> None:
        """The agent's page is at ``url``: notifications link there unless the
        configuration's ``alerting.page_url`` says otherwise."""
        self.page_url = url
        self.alerting.configure(self._alerting_config(self.config))

    def alert_status(self, name: str) -> dict[str, Any]:
        """``name``'s ``alert`` (``state``, ``since``; ``None`` when its alerts are off)
        and whether a maintenance window covers it now."""
        return self.alerting.status(name, time.time())

    def monitor_rows(self) -> list[tuple[str, ...]]:
        """Each configured monitor's lines for ``/metrics``
        (:meth:`~.metrics.MonitorSeries.row`): a snapshot, safe to read on a thread."""
        now = time.time()
        status = self.alerting.status
        rows = []
        for entry in self.board.entries():
            found = status(entry.monitor.name, now)
            alert = found["alert"]
            firing = None if alert is None else alert["state"] == FIRING_PHASE
            rows.append(entry.series.row(found["maintenance"], firing))
        return rows

    def facts(self) -> AgentFacts:
        """The agent's own state for ``/metrics``."""
        return AgentFacts(
            monitors=len(self.board),
            in_flight=self.scheduler.in_flight + sum(self._probing.values()),
            reloads=dict(self.reloads),
            last_reload_ok=self.last_reload_ok,
            internal_errors=dict(self.faults.counts),
            history_queued=self.history.queued,
            history_dropped=self.history.dropped,
            notifications=self.alerting.notifications(),
            queued=self.alerting.queue_length(),
        )

    def module(self, name: str) -> Module | None:
        """The ``/probe`` module ``name`` of the running configuration, if any."""
        return self.config.modules.get(name)

    async def probe(
        self,
        name: str,
        target: str,
        *,
        timeout: float | None,
        log: Callable[[str], None] | None = None,
    ) -> Outcome:
        """One check of ``target`` with the module ``name`` now, within ``timeout`` when given.

        It takes a slot of the agent's ``concurrency`` that no scheduled check waits
        for, and never waits for one: with ``concurrency`` checks in flight (scheduled
        and probes together), or the module's own ``concurrency`` of probes, it raises
        :class:`~.prober.Busy`.
        """
        module = self.config.modules[name]
        if self._probing[name] >= module.concurrency:
            raise Busy(
                f'busy: {module.concurrency} probes of module "{name}" in flight '
                "(its concurrency), try later"
            )
        probe = module.probe
        if timeout is not None and timeout < probe.timeout:
            probe = dataclasses.replace(
                probe, options=dataclasses.replace(probe.options, timeout=timeout)
            )
        async with self.budget.slot_now():
            self._probing[name] += 1
            try:
                return await self.probers.run(probe, name=name, target=target, log=log)
            finally:
                self._probing[name] -= 1
                if not self._probing[name]:
                    del self._probing[name]

    async def start(self) -> None:
        """Open the history, start the script workers (a script due before waits for
        them), the alerts (their saved states taken up), the monitors and the reloads;
        raise :class:`HistoryError` when the history cannot be opened and
        :class:`AgentError` when the alerts' database cannot be used or the
        open-file limit is too low for the workers."""
        needed = files_needed(self.config.workers)
        if open_file_limit() < needed:
            raise AgentError(too_few_files(open_file_limit(), needed))
        await self.history.open()
        self.history.start()
        await self.supervisor.start()
        try:
            await self.alerting.start()
        except OutboxError as exc:
            raise AgentError(str(exc)) from exc
        await self._apply(self.config)
        self._reloading = asyncio.create_task(self._reload_forever(), name="reload")

    async def close(self, grace: float) -> None:
        """Stop the monitors (``grace`` seconds for checks in flight), write the history
        and the alerts' states (``grace`` seconds for notifications in flight; the
        outbox keeps the rest) and stop the workers (a script still running ends
        ``interrupted``)."""
        if self._reloading is not None:
            self._reloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloading
        cut = await self.scheduler.stop(grace)
        if cut:
            self.log(f"stopped {cut} checks still running after {grace:g}s")
        try:
            await self.alerting.close(grace)
            await self.history.close(HISTORY_WAIT)
        finally:
            await self.supervisor.close()

    async def _reload_forever(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            await self.reload()

    def _reloaded(self, ok: bool) -> None:
        self.reloads["success" if ok else "failure"] += 1
        self.last_reload_ok = ok

    async def _apply(self, config: AgentConfig) -> tuple[list[str], list[str]]:
        # What can fail (reading the history) comes first: a failed apply changes nothing.
        mine = [monitor for monitor in config.monitors if self.shard.owns(monitor.name)]
        new = [monitor.name for monitor in mine if self.board.get(monitor.name) is None]
        recent = [await self.history.results(name, limit=RECENT) for name in new]
        self.history.retention = config.retention
        self.budget.resize(config.concurrency)
        self.supervisor.set_concurrency(config.concurrency)
        self.config = config
        self.alerting.configure(self._alerting_config(config), _labels(config))
        self.board.configure(mine, dict(zip(new, recent, strict=True)))
        return self.scheduler.update(mine)

    async def _run(self, monitor: Monitor) -> Outcome:
        return await self.probers.run(
            monitor.probe,
            name=monitor.name,
            target=monitor.url,
            output=functools.partial(self.board.write, monitor.name),
        )

    def _alerting_config(self, config: AgentConfig) -> AlertingConfig:
        if config.alerting.page_url is not None:
            return config.alerting
        return dataclasses.replace(config.alerting, page_url=self.page_url)

    def _record(self, monitor: Monitor, outcome: Outcome) -> None:
        outcome = self.board.settle(monitor.name, outcome)
        self.alerting.observe(
            monitor.name,
            Run(
                outcome.status,
                outcome.time,
                outcome.error,
                outcome.value,
                repeat=outcome.signal == REPEAT_PREVIOUS,
            ),
        )
        self.history.add(monitor.name, outcome)
        change = self.board.record(monitor.name, outcome)
        if change is None:
            return
        before, after = change
        was = before.name.lower() if before is not None else "new"
        why = f": {outcome.error}" if outcome.error else ""
        self.log(f"monitor {monitor.name}: {was} -> {after.name.lower()}{why}")


def _labels(config: AgentConfig) -> dict[str, tuple[tuple[str, str], ...]]:
    return {monitor.name: monitor.labels for monitor in config.monitors}
