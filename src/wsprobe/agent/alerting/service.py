"""Alerting in a running agent: runs in, notices queued durably, delivered apart.

:meth:`Alerting.observe` is called on the event loop after each run and returns at
once: the engine decides, and the new state with its notices is written to the
outbox on the outbox's own thread, within the second. The deliverer sends from the
outbox; a refresher re-sends firing alerts to Alertmanager every minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from .config import ALERTMANAGER, AlertingConfig, Destination, Notifier
from .deliver import Deliverer, Retry
from .engine import FIRING_PHASE, Engine, Run
from .notice import FIRING, TEST, Notice
from .outbox import Outbox, OutboxError
from .send import DeliveryError, send_alertmanager, send_apprise

__all__ = ["REFRESH_EVERY", "Alerting", "send_test_notification"]

#: Seconds between re-sends of a firing alert to Alertmanager.
REFRESH_EVERY = 60.0
SEND_TIMEOUT = 30.0
T = TypeVar("T")
Labels = Mapping[str, Sequence[tuple[str, str]]]


class Alerting:
    """The alerts of one agent: engine, outbox in ``state_dir`` and deliverer.

    ``labels`` are each monitor's labels (sent to Alertmanager); ``log`` receives one
    line per notification, per failure and per fault.
    """

    def __init__(
        self,
        config: AlertingConfig,
        state_dir: Path,
        *,
        log: Callable[[str], None],
        labels: Labels | None = None,
        retry: Retry | None = None,
        refresh_every: float = REFRESH_EVERY,
        timeout: float = SEND_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = Engine(config)
        self._state_dir = state_dir
        self._log = log
        self._labels = dict(labels or {})
        self._retry = retry or Retry()
        self._refresh_every = refresh_every
        self._timeout = timeout
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wsprobe-outbox")
        self._outbox: Outbox | None = None
        self._deliverer: Deliverer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._keeper: asyncio.Task[None] | None = None
        self._dirty: set[str] = set()
        self._forgotten: set[str] = set()
        self._notices: list[tuple[str, Notice]] = []
        self._changed = asyncio.Event()
        self._closing = False
        self._targets = _targets(config)

    async def start(self) -> None:
        """Open the outbox (raises :class:`OutboxError`), take up the saved alert
        states, and start delivering."""
        import aiohttp

        self._outbox = await self._db_call(Outbox, self._state_dir)
        self.engine.states.update(await self._db(lambda outbox: outbox.states()))
        self._forgotten |= self.engine.configure(self.engine.config)
        session = aiohttp.ClientSession()
        self._deliverer = Deliverer(
            self._db,
            destinations=lambda: self._targets,
            session=session,
            log=self._log,
            retry=self._retry,
            timeout=self._timeout,
            clock=self._clock,
        )
        self._session = session
        self._keeper = asyncio.create_task(self._keep())
        self._tasks = [
            asyncio.create_task(self._deliverer.run()),
            asyncio.create_task(self._refresh()),
        ]

    def configure(self, config: AlertingConfig, labels: Labels | None = None) -> None:
        """Take a reloaded configuration: alert states carry over by monitor name."""
        self._forgotten |= self.engine.configure(config)
        self._dirty -= self._forgotten
        self._changed.set()
        self._targets = _targets(config)
        if labels is not None:
            self._labels = dict(labels)

    def observe(self, monitor: str, run: Run) -> None:
        """Count a settled run of ``monitor``: at once, without waiting on anything."""
        before = self.engine.states.get(monitor)
        notice = self.engine.observe(monitor, run)
        if self.engine.states.get(monitor) == before and notice is None:
            return
        self._dirty.add(monitor)
        self._forgotten.discard(monitor)
        if notice is not None:
            rule = self.engine.config.rules[monitor]
            notice = replace(
                notice,
                labels=tuple(self._labels.get(monitor, ())),
                link=self.engine.config.link(monitor),
            )
            self._notices += [
                (destination.key, notice)
                for destination in self.engine.config.destinations(rule.notify)
            ]
        self._changed.set()

    def status(self, monitor: str, at: float) -> dict[str, Any]:
        """What the API shows: ``alert`` (``state`` and ``since``; ``None`` when the
        monitor's alerts are off) and ``maintenance``."""
        state = self.engine.state(monitor)
        alert = None if state is None else {"state": state.phase, "since": state.since}
        return {"alert": alert, "maintenance": self.engine.in_maintenance(monitor, at)}

    def notifications(self) -> dict[tuple[str, str], int]:
        """Notifications so far by ``(notifier, result)``, result ``sent`` or ``failed``."""
        return dict(self._deliverer.counts) if self._deliverer is not None else {}

    def queue_length(self) -> int:
        """Notices waiting: not yet written, or in the outbox at the deliverer's last look."""
        queued = self._deliverer.queued if self._deliverer is not None else 0
        return queued + len(self._notices)

    async def flush(self) -> None:
        """Write what is pending now."""
        await self._save()

    async def close(self, grace: float = 5.0) -> None:
        """Stop delivering (``grace`` seconds for deliveries in flight; the outbox keeps
        the rest) and write what is pending."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._keeper is not None:
            # The keeper is never cancelled in a write: it could not tell whether the
            # write happened, and would queue its notices twice.
            self._closing = True
            self._changed.set()
            await self._keeper
        if self._deliverer is not None:
            await self._deliverer.close(grace)
            await self._session.close()
        if self._outbox is not None:
            with contextlib.suppress(OutboxError):
                await self._save()
            await self._db(lambda outbox: outbox.close())
        self._thread.shutdown(wait=True)

    async def _keep(self) -> None:
        failing = False
        while not self._closing:
            await self._changed.wait()
            try:
                await self._save()
            except Exception as exc:  # supervised: the pending writes wait for the next try
                if not failing:
                    self._log(f"alerts: {exc}")
                failing = True
                await asyncio.sleep(1.0)
                continue
            if failing:
                self._log("alerts: the outbox is written again")
            failing = False

    async def _save(self) -> None:
        self._changed.clear()
        dirty, self._dirty = self._dirty, set()
        forgotten, self._forgotten = self._forgotten, set()
        notices, self._notices = self._notices, []
        states = {name: s for name in dirty if (s := self.engine.states.get(name)) is not None}
        now = self._clock()
        try:
            refused = await self._db(lambda outbox: outbox.save(states, notices, now, forgotten))
        except Exception:
            self._dirty |= dirty
            self._forgotten |= forgotten - self._dirty
            self._notices[:0] = notices
            self._changed.set()
            raise
        if refused:
            self._log(f"alerts: the outbox is full: {refused} notifications not queued")
        if notices and self._deliverer is not None:
            self._deliverer.wake()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_every)
            try:
                self._refresh_once()
            except Exception as exc:  # supervised
                self._log(f"alerts: cannot re-send firing alerts: {exc!r}")

    def _refresh_once(self) -> None:
        assert self._deliverer is not None
        config = self.engine.config
        now = self._clock()
        for monitor, rule in config.rules.items():
            state = self.engine.states.get(monitor)
            if state is None or state.phase != FIRING_PHASE or not state.told:
                continue
            notice = Notice(
                kind=FIRING,
                monitor=monitor,
                state=state.severity,
                severity=state.severity,
                since=state.started if state.started is not None else now,
                at=now,
                labels=tuple(self._labels.get(monitor, ())),
                link=config.link(monitor),
            )
            for destination in config.destinations(rule.notify):
                if destination.kind == ALERTMANAGER:
                    self._deliverer.refresh(notice, destination)

    async def _db(self, call: Callable[[Outbox], T]) -> T:
        outbox = self._outbox
        assert outbox is not None
        return await self._db_call(call, outbox)

    async def _db_call(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, call, *args)


def _targets(config: AlertingConfig) -> dict[str, tuple[Destination, Notifier]]:
    return {
        destination.key: (destination, notifier)
        for notifier in config.notifiers.values()
        for destination in notifier.destinations
    }


async def send_test_notification(
    config: AlertingConfig, name: str, *, timeout: float
) -> str | None:
    """Send a test notification through the notifier ``name`` (to each of its URLs),
    ``timeout`` seconds for each; ``None`` when every one took it, else one line
    saying why not."""
    import aiohttp

    notifier = config.notifiers.get(name)
    if notifier is None:
        known = ", ".join(sorted(config.notifiers)) or "none"
        return f"no notifier {name!r} (configured: {known})"
    now = time.time()
    notice = Notice(TEST, "wsprobe", "ok", "info", since=now, at=now)
    async with aiohttp.ClientSession() as session:
        with ThreadPoolExecutor(max_workers=1) as threads:
            for destination in notifier.destinations:
                try:
                    if destination.kind == ALERTMANAGER:
                        await send_alertmanager(
                            destination, notice, session=session, timeout=timeout, now=now
                        )
                    else:
                        await send_apprise(
                            destination, notifier, notice, executor=threads, timeout=timeout
                        )
                except DeliveryError as exc:
                    return str(exc)
    return None
