"""Sending what the outbox holds: off the checks' path, retried, in order.

Each (destination, monitor) pair sends its notices one at a time, oldest first; a
failed one is tried again after a growing pause (:class:`Retry`) until it is older
than ``Retry.give_up``, then dropped with a log line. Destinations are independent,
and each has a few pairs in flight at once, so one slow receiver delays only its
own notices. Anything unexpected fails that one delivery with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import ALERTMANAGER, Destination, Notifier
from .notice import Notice
from .outbox import Item, OnOutbox
from .send import DeliveryError, send_alertmanager, send_apprise

if TYPE_CHECKING:
    import aiohttp

__all__ = ["FAILED", "SENT", "Deliverer", "Retry"]

SENT = "sent"
FAILED = "failed"
_IDLE = 60.0


@dataclass(frozen=True, slots=True)
class Retry:
    """Pauses between attempts: ``first`` seconds, doubling up to ``cap``; a notice
    older than ``give_up`` seconds is dropped after its last failure."""

    first: float = 2.0
    cap: float = 300.0
    give_up: float = 3900.0

    def pause(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones (0 or more)."""
        return min(self.first * 2.0 ** min(attempts, 32), self.cap)


class Deliverer:
    """Sends the outbox's notices; ``db`` runs a call on the outbox's thread."""

    def __init__(
        self,
        db: OnOutbox,
        *,
        destinations: Callable[[], Mapping[str, tuple[Destination, Notifier]]],
        session: aiohttp.ClientSession,
        log: Callable[[str], None],
        retry: Retry,
        timeout: float,
        per_destination: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._destinations = destinations
        self._session = session
        self._log = log
        self._retry = retry
        self._timeout = timeout
        self._per_destination = per_destination
        self._clock = clock
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Apprise's calls block: they get threads of their own, bounded.
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="wsprobe-notify")
        #: Notifications by (notifier, result): :data:`SENT` or :data:`FAILED`.
        self.counts: Counter[tuple[str, str]] = Counter()
        #: Notices in the outbox at the last look.
        self.queued = 0

    def wake(self) -> None:
        """Look at the outbox now: something was queued."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; a failed round is one log line, then the next."""
        failing = False
        while True:
            try:
                delay = await self._round()
            except Exception as exc:  # supervised: the loop outlives any one fault
                if not failing:
                    self._log(f"alerts: cannot read the outbox: {exc}")
                failing = True
                delay = 1.0
            else:
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def refresh(self, notice: Notice, destination: Destination) -> None:
        """Send a firing ``notice`` to Alertmanager again, unless notices for the pair
        are queued or in flight (they come first, in order)."""
        pair = (destination.key, notice.monitor)
        if pair in self._busy:
            return
        self._start(pair, self._refresh(pair, notice, destination))

    async def close(self, grace: float) -> None:
        """Give deliveries in flight ``grace`` seconds, cut the rest (they stay queued,
        and are sent again after a restart) and free the threads."""
        if self._tasks:
            # A delivery cut after the receiver took it is sent twice: let it end.
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _round(self) -> float:
        self._wake.clear()
        heads = await self._db(lambda outbox: outbox.heads(set(self._busy)))
        self.queued = await self._db(lambda outbox: outbox.length())
        now = self._clock()
        started = Counter(destination for destination, _ in self._busy)
        later = _IDLE
        for item in heads:
            if item.next_at > now:
                later = min(later, item.next_at - now)
            elif started[item.destination] < self._per_destination:
                started[item.destination] += 1
                pair = (item.destination, item.monitor)
                self._start(pair, self._deliver(item))
        # A due notice held back by the limit starts when one in flight ends (a wake).
        return max(later, 0.01)

    def _start(self, pair: tuple[str, str], work: Awaitable[None]) -> None:
        self._busy.add(pair)

        async def supervised() -> None:
            try:
                await work
            except Exception as exc:  # one failed delivery, never the deliverer
                self._log(f"alerts: delivery for {pair[1]} failed unexpectedly: {exc!r}")
            finally:
                self._busy.discard(pair)
                self._wake.set()

        task = asyncio.create_task(supervised())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, item: Item) -> None:
        target = self._destinations().get(item.destination)
        if target is None:
            self._log(f"alerts: dropped a notice for {item.monitor}: its notifier is gone")
            await self._db(lambda outbox: outbox.done(item))
            return
        destination, notifier = target
        try:
            notice = Notice.from_json(item.notice)
        except (ValueError, TypeError):
            self._log(f"alerts: dropped an unreadable notice for {item.monitor}")
            await self._db(lambda outbox: outbox.done(item))
            return
        what = f"{notice.kind} of {notice.monitor} to {notifier.name} ({destination.shown})"
        reason = await self._send(destination, notifier, notice)
        if reason is None:
            self.counts[notifier.name, SENT] += 1
            self._log(f"alerts: sent {what}")
            await self._db(lambda outbox: outbox.done(item))
            return
        self.counts[notifier.name, FAILED] += 1
        now = self._clock()
        if now - item.created >= self._retry.give_up:
            self._log(f"alerts: gave up on {what} after {item.attempts + 1} attempts: {reason}")
            await self._db(lambda outbox: outbox.done(item))
            return
        pause = self._retry.pause(item.attempts)
        self._log(f"alerts: cannot send {what}, again in {pause:g}s: {reason}")
        await self._db(lambda outbox: outbox.retry(item, now + pause))

    async def _refresh(
        self, pair: tuple[str, str], notice: Notice, destination: Destination
    ) -> None:
        queued = await self._db(lambda outbox: outbox.queued())
        if pair in queued:
            return
        target = self._destinations().get(destination.key)
        if target is None:
            return
        reason = await self._send(destination, target[1], notice)
        self.counts[target[1].name, SENT if reason is None else FAILED] += 1
        if reason is not None:
            self._log(
                f"alerts: cannot re-send firing {notice.monitor} ({destination.shown}): {reason}"
            )

    async def _send(
        self, destination: Destination, notifier: Notifier, notice: Notice
    ) -> str | None:
        try:
            if destination.kind == ALERTMANAGER:
                await send_alertmanager(
                    destination,
                    notice,
                    session=self._session,
                    timeout=self._timeout,
                    now=self._clock(),
                )
            else:
                await send_apprise(
                    destination, notifier, notice, executor=self._threads, timeout=self._timeout
                )
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a notifier's bug fails this attempt only
            # Only the type: the text of an error from deep inside may quote the URL.
            return f"{destination.shown}: unexpected {type(exc).__name__}"
        return None
