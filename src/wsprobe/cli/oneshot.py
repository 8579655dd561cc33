"""The client, imported for a command that makes one call in its own process.

``wsprobe send`` and ``wsprobe check URL`` start once per call, and ``logging``
(with ``traceback``, ``linecache``, ``tokenize``, ``textwrap`` and ``string``) costs
such a process ~4 ms of CPU for records that go nowhere: ``websockets`` logs only to
the logger it is given, the core's, which has a null handler and which only a library
user configures. So the command lends ``websockets`` and the core a silent ``logging``
while the client loads: the same loggers' names, no level enabled, nothing written,
the same output. Only these commands' processes do
(``run``, ``serve``, ``agent`` and library users import the client as usual).
"""

from __future__ import annotations

import types
from typing import Any

from ..protocol._standins import StandIn, lent

__all__ = ["load_client"]


class _SilentLogger:
    """What ``websockets`` and the core call on a logger; nothing is enabled or kept."""

    def __class_getitem__(cls, item: object) -> types.GenericAlias:
        # websockets.typing subscripts LoggerAdapter at import.
        return types.GenericAlias(cls, item)

    def __init__(self, name: str, *_args: object) -> None:
        self.name = name

    def isEnabledFor(self, _level: int) -> bool:
        return False

    def addHandler(self, _handler: object) -> None:
        pass

    def log(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    debug = info = warning = error = exception = critical = log


#: Whether this process is the command's own: set by the console script
#: (:func:`wsprobe.cli.main_entry`). A program calling :func:`wsprobe.cli.main`
#: keeps its ``logging`` for the client it goes on using.
own_process = False


def load_client() -> None:
    """Load ``wsprobe.client`` with a silent ``logging`` in the command's own process,
    unless either is loaded."""
    if not own_process:
        return
    silent = StandIn(
        "logging",
        DEBUG=10,
        Logger=_SilentLogger,
        LoggerAdapter=_SilentLogger,
        getLogger=_SilentLogger,
        NullHandler=object,
    )
    with lent(silent):
        from .. import client  # noqa: F401
