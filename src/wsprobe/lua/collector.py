"""When a process's cycle collector runs (each worker's, and the agent's): young
collections automatically, full ones at idle moments or when the old generation has
grown past a bound.

Scripts leave no cycles (their Lua state and Python side go by reference counting),
so what a full collection walks while scripts run is mostly the live objects of the
scripts in flight: with hundreds of them, a pause every other script in the worker
feels, to free next to nothing. CPython starts one whenever the old generation has
grown by a quarter. Instead, :class:`Collector`:

- freezes start-up's objects (:func:`gc.freeze`: they live as long as the worker,
  no collection walks them again);
- keeps the young generations' automatic collections (short: they walk only what
  was made since the last ones), which free a cycle made and dropped within them;
- turns automatic full collections off and runs one itself, on :meth:`tick`:
  when the worker is idle (nothing waits on it: the pause costs no script) and
  anything reached the old generation since the last one; or, busy or not, when
  the old generation holds more than :data:`OLD_GROWTH` objects beyond what the
  last full collection left, counted every :data:`COUNT_EVERY` middle collections
  (counting walks it). A cycle that outlived the young collections is therefore
  freed at the next idle moment, and what waits for a full collection stays
  bounded (the bound, plus what the middle collections between two counts
  promote): bounded memory over a short pause.
"""

from __future__ import annotations

import gc

__all__ = ["COUNT_EVERY", "OLD_GROWTH", "Collector"]

#: Objects the old generation may gain over what the last full collection left
#: before one runs though scripts are in flight: above what the scripts in flight
#: of a worker at the default concurrency keep alive (docs/performance.md).
OLD_GROWTH = 100_000
# Young collections between two of the middle generation, which walk what they
# left: fewer than CPython's 10, for shorter pauses; what the middle one then moves
# to the old generation earlier costs nothing there (no automatic collection walks it).
_MIDDLE = 5
# A threshold the count of middle collections never reaches: no automatic full one.
_NEVER = 2**31 - 1
#: Middle collections (each moves its survivors to the old generation) between two
#: counts of the old generation's size while busy.
COUNT_EVERY = 10


class Collector:
    """The collector policy of one process; :meth:`install` once, then :meth:`tick`
    regularly from its event loop."""

    def __init__(self, bound: int = OLD_GROWTH) -> None:
        self._bound = bound
        # What the last full collection left in the old generation, and the count
        # of promotions when its size was last counted.
        self._left = 0
        self._counted = 0

    def install(self) -> None:
        """Freeze what exists now and turn automatic full collections off.

        Start-up leaves no garbage to speak of: a collection then would walk all of
        it to free nothing, so what it made is frozen as it is."""
        gc.freeze()
        gc.set_threshold(gc.get_threshold()[0], _MIDDLE, _NEVER)
        self._left = self._counted = 0

    def renew(self) -> None:
        """Free what the frozen objects left behind and freeze what lives now.

        For a process whose long-lived objects are replaced (a configuration
        reloaded): what was frozen is walked again, once, so that the cycles of what it
        replaced are freed, not kept frozen for the process's life."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._left = self._counted = 0

    def tick(self, *, idle: bool) -> bool:
        """Run a full collection if the policy says so now; True when it ran."""
        # The middle generation's collections since the last full one: none, and
        # nothing reached the old generation.
        promotions = gc.get_count()[2]
        if promotions == 0:
            return False
        if not idle:
            # Counting the old generation walks it: only every few promotions.
            if promotions - self._counted < COUNT_EVERY:
                return False
            self._counted = promotions
            if len(gc.get_objects(2)) - self._left <= self._bound:
                return False
        gc.collect()
        self._left = len(gc.get_objects(2))
        self._counted = 0
        return True
