"""Runs each monitor at its interval, at a stable offset, one run of a monitor at a time.

Each monitor has one task that sleeps until its next slot, runs the check (waiting
for a free slot of the agent's concurrency) and records the outcome. A run that
outlasts its interval makes the monitor miss slots; each missed slot is counted as
a skip and the next run starts at the next slot, so a slow server is never probed
twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager

from .budget import Budget
from .config import Monitor
from .outcome import Outcome

__all__ = ["Scheduler", "offset_of"]


def offset_of(name: str, interval: float) -> float:
    """Where in its interval a monitor runs: stable across restarts, spread across names."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * interval


class Scheduler:
    """Keeps one task per monitor; :meth:`update` applies a new set of monitors.

    ``run`` performs one check; ``record`` receives each outcome; ``skipped`` is told
    each missed slot. A run waits for a slot of ``budget``, the agent's bound on checks in
    flight (``/probe``'s included).
    ``unit(component)`` wraps each run: an unexpected exception fails that run, and
    the monitor goes on to its next slot.
    """

    def __init__(
        self,
        *,
        run: Callable[[Monitor], Awaitable[Outcome]],
        record: Callable[[Monitor, Outcome], None],
        skipped: Callable[[Monitor, int], None],
        budget: Budget,
        unit: Callable[[str], AbstractContextManager[None]],
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._run = run
        self._record = record
        self._skipped = skipped
        self._unit = unit
        self._budget = budget
        self._tasks: dict[str, tuple[Monitor, asyncio.Task[None]]] = {}
        self._running: set[str] = set()
        self._stopping = False
        self._clock = clock or asyncio.get_running_loop().time
        self._epoch = self._clock()

    @property
    def in_flight(self) -> int:
        """Checks running right now."""
        return len(self._running)

    def update(self, monitors: Iterable[Monitor]) -> tuple[list[str], list[str]]:
        """Run exactly ``monitors`` from now on; return the names ``(started, stopped)``.

        A monitor whose definition did not change keeps its task and its schedule.
        """
        wanted = {monitor.name: monitor for monitor in monitors}
        stopped = []
        for name, (monitor, task) in list(self._tasks.items()):
            if name not in wanted or wanted[name].fingerprint != monitor.fingerprint:
                task.cancel()
                del self._tasks[name]
                stopped.append(name)
        started = []
        for name, monitor in wanted.items():
            if name not in self._tasks:
                task = asyncio.create_task(self._loop(monitor), name=f"monitor {name}")
                self._tasks[name] = (monitor, task)
                started.append(name)
        return started, stopped

    async def stop(self, grace: float) -> int:
        """Start no new run; give runs in flight ``grace`` seconds; return how many were cut."""
        self._stopping = True
        tasks = [task for _, task in self._tasks.values()]
        idle = [task for name, (_, task) in self._tasks.items() if name not in self._running]
        for task in idle:
            task.cancel()
        busy = [task for task in tasks if task not in idle]
        cut = 0
        if busy:
            _, pending = await asyncio.wait(busy, timeout=grace)
            cut = len(pending)
            for task in pending:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        return cut

    async def _loop(self, monitor: Monitor) -> None:
        interval = monitor.interval
        # Slots are laid on one grid from the agent's start, so a reload does not
        # move an unchanged phase and restarts spread the same way.
        phase = offset_of(monitor.name, interval)
        now = self._clock()
        due = self._epoch + phase + math.ceil((now - self._epoch - phase) / interval) * interval
        while not self._stopping:
            await asyncio.sleep(max(0.0, due - self._clock()))
            if self._stopping:
                return
            with self._unit("monitor"):
                await self._once(monitor)
            due += interval
            late = self._clock() - due
            if late > 0:
                missed = math.floor(late / interval) + 1
                due += missed * interval
                with self._unit("monitor"):
                    self._skipped(monitor, missed)

    async def _once(self, monitor: Monitor) -> None:
        async with self._budget.slot():
            self._running.add(monitor.name)
            try:
                outcome = await self._run(monitor)
            finally:
                self._running.discard(monitor.name)
        self._record(monitor, outcome)
