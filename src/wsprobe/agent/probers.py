"""The probers by name, as blackbox_exporter keeps them: a check's ``prober``
(:attr:`.config.Probe.prober`) chooses one, nothing branches on the kind of check."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .config import Probe
from .outcome import Outcome
from .prober import Check, Prober
from .script_prober import probe_script
from .websocket_prober import probe_websocket

if TYPE_CHECKING:
    from ..lua.supervisor import Supervisor

__all__ = ["Probers", "make_probers"]


class Probers:
    """The agent's probers, each ready to run a check: ``websocket`` (a declarative
    exchange) and ``script`` (a Lua script on ``supervisor``'s workers)."""

    def __init__(self, table: Mapping[str, Prober]) -> None:
        self._table = dict(table)

    async def run(
        self,
        probe: Probe,
        *,
        name: str,
        target: str | None,
        log: Callable[[str], None] | None = None,
        output: Callable[[str, float], None] | None = None,
    ) -> Outcome:
        """Run ``probe`` against ``target`` now with the prober it names.

        Never raises for what the server or the script did: that is the outcome.
        ``log`` receives a readable account of the check; ``output`` what a script
        printed or logged, with the time of each line (default: to ``log``).
        """
        say = log or _quiet
        check = Check(
            name,
            probe,
            target,
            started=time.time(),
            say=say,
            output=output or (lambda line, _at: say(line)),
        )
        return await self._table[probe.prober](check)


def make_probers(supervisor: Supervisor) -> Probers:
    """The table of probers; scripts run on ``supervisor``'s workers."""
    return Probers(
        {
            "websocket": probe_websocket,
            "script": functools.partial(probe_script, supervisor),
        }
    )


def _quiet(_line: str) -> None:
    pass
