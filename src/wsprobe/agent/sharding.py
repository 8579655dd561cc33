"""``--shard I/N``: which monitors one of N agents runs.

Rendezvous (highest random weight) hashing of the monitor's name: every agent
computes the same owner without talking to the others, adding or removing a
monitor moves no other monitor, and going from N to N+1 shards moves only the
monitors the new shard wins (about 1/(N+1) of them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import Error

__all__ = ["MAX_SHARDS", "Shard", "ShardError", "shard_of"]

#: The most agents one configuration may be split across: each monitor's owner is
#: found by hashing its name once per shard.
MAX_SHARDS = 1024


class ShardError(Error):
    """``--shard`` is not ``I/N`` with ``0 <= I < N``."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"1/3"`` → ``Shard(1, 3)``; raises :class:`ShardError` with the reason."""
        from ..redaction import one_line

        shown = one_line(text if len(text) <= 20 else text[:20] + "…")
        index, sep, count = text.partition("/")
        if not (sep and (index + count).isascii() and index.isdigit() and count.isdigit()):
            raise ShardError(f'invalid --shard "{shown}": expected I/N, like 0/2')
        # Counted in digits first: int() of thousands of digits is slow, then refused.
        if len(count.lstrip("0")) > len(str(MAX_SHARDS)) or not 1 <= int(count) <= MAX_SHARDS:
            raise ShardError(f'invalid --shard "{shown}": N must be 1 to {MAX_SHARDS}')
        if len(index.lstrip("0")) > len(str(MAX_SHARDS)) or int(index) >= int(count):
            raise ShardError(f'invalid --shard "{shown}": I must be 0 to N-1')
        return cls(int(index), int(count))

    def owns(self, name: str) -> bool:
        """True when the monitor called ``name`` belongs to this shard."""
        return self.count == 1 or shard_of(name, self.count) == self.index


def shard_of(name: str, count: int) -> int:
    """The shard (0 to ``count`` - 1) that runs the monitor called ``name``."""
    return max(range(count), key=lambda shard: _weight(shard, name))


def _weight(shard: int, name: str) -> bytes:
    return hashlib.blake2b(f"{shard}\x00{name}".encode(), digest_size=8).digest()
