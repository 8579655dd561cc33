"""Scheduled scripts handed to the workers together rather than one by one.

A script handed over alone costs a write down a worker's pipe, a wake-up of the
worker's event loop and of a step thread, and its record comes back alone; with
monitors spread over their interval, every script pays all of it. Held a few
milliseconds, the scripts due meanwhile go down in one frame and their records
tend to come back in one line (docs/performance.md, "A scripted monitor's cost in
the agent").
"""

from __future__ import annotations

import asyncio

__all__ = ["HANDOVER_DELAY", "HANDOVER_SHARE", "Handover"]

#: Seconds the first script waiting is held for the others, at most.
HANDOVER_DELAY = 0.05
#: The share of its interval a monitor's script may be held: a tight schedule is not
#: moved by more than a hundredth of a slot.
HANDOVER_SHARE = 0.01


class Handover:
    """Releases the callers of :meth:`wait` together, at most ``delay`` seconds after
    the first of them came."""

    def __init__(self, delay: float = HANDOVER_DELAY) -> None:
        self._delay = delay
        self._opening: asyncio.Future[None] | None = None
        self._opens = 0.0

    async def wait(self, longest: float) -> None:
        """Return with the others waiting now, within ``longest`` seconds: at once
        when the current delay ends later than that."""
        loop = asyncio.get_running_loop()
        # A delay that a loop ended in the middle of ends with it.
        if self._opening is None or self._opening.get_loop() is not loop:
            self._opening = loop.create_future()
            self._opens = loop.time() + min(self._delay, longest)
            loop.call_at(self._opens, self._open, self._opening)
        elif self._opens > loop.time() + longest:
            return
        # Shielded: a caller cancelled while waiting must not cancel the others.
        await asyncio.shield(self._opening)

    def _open(self, opening: asyncio.Future[None]) -> None:
        if self._opening is opening:
            self._opening = None
        opening.set_result(None)
