"""The file descriptors a process's scripts may open, shared so that none starves another.

A worker runs many scripts: one that opens connections until the process runs out
of descriptors would make every other script's next call fail with ``too many open
files``. :class:`Descriptors` counts what each script holds (its open sessions,
its call in flight) against a budget read from ``RLIMIT_NOFILE``: a script may hold
at most an equal share of it (half while it is alone, so that a newcomer always
finds room), and past that its own next call is its error.
"""

from __future__ import annotations

import resource
from collections.abc import Hashable

from ..errors import ScriptCallError

__all__ = ["RESERVED", "Descriptors", "open_file_limit", "too_few_files"]

#: Descriptors the process keeps for itself (its pipes, the loop, the store, the
#: HTTP client's idle connections), out of every script's reach.
RESERVED = 64


class Descriptors:
    """The budget of one process: ``limit`` descriptors (default: ``RLIMIT_NOFILE``'s
    soft limit) less :data:`RESERVED`, shared by the scripts holding any."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            limit = open_file_limit()
        self.total = max(2, limit - RESERVED)
        self._held: dict[Hashable, int] = {}
        self._used = 0

    def take(self, owner: Hashable) -> None:
        """Count one more descriptor for ``owner``, or raise its error."""
        held = self._held.get(owner, 0)
        holders = len(self._held) + (0 if owner in self._held else 1)
        share = self.total // max(2, holders)
        if held >= share or self._used >= self.total:
            raise ScriptCallError(
                f"too many open files: the script's share is {share} of the {self.total} "
                "its worker may open"
            )
        self._held[owner] = held + 1
        self._used += 1

    def give(self, owner: Hashable) -> None:
        """``owner`` closed one of its descriptors."""
        held = self._held.get(owner, 0)
        if held > 1:
            self._held[owner] = held - 1
        elif held:
            del self._held[owner]
        self._used -= min(held, 1)

    def release(self, owner: Hashable) -> None:
        """``owner`` ended: whatever it held is closed."""
        self._used -= self._held.pop(owner, 0)


def open_file_limit() -> int:
    """The process's open-file limit now (its soft ``RLIMIT_NOFILE``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def too_few_files(limit: int, needed: int) -> str:
    """Why a process with an open-file limit of ``limit`` cannot start what needs
    ``needed``, and what to do."""
    return (
        f"the open-file limit of {limit} is too low, {needed} needed: "
        f"raise it (ulimit -n {needed})"
    )
