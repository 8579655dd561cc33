"""The probers by name, as blackbox_exporter keeps them: a check's ``prober``
(:attr:`.config.Probe.prober`) chooses one, nothing branches on the kind of check."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..redaction import cut
from .config import Probe
from .outcome import MAX_TEXT, Outcome, State
from .prober import Check, Prober
from .script_prober import probe_script
from .websocket_prober import probe_websocket

if TYPE_CHECKING:
    from ..lua.supervisor import Supervisor

__all__ = ["MAX_TEXT", "Probers", "make_probers"]


class Probers:
    """The agent's probers, each ready to run a check: ``websocket`` (a declarative
    exchange) and ``script`` (a Lua script on ``supervisor``'s workers).

    ``failed`` is told a prober's unexpected exception and returns its one-line text:
    the check is then UNKNOWN with that text, and whatever runs it goes on.
    """

    def __init__(self, table: Mapping[str, Prober], failed: Callable[[Exception], str]) -> None:
        self._table = dict(table)
        self._failed = failed

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
        printed or logged, with the time of each line (default: to ``log``). None of
        them shows a secret query parameter's value (:meth:`.config.Probe.shown`); the
        outcome's value and error are cut at :data:`MAX_TEXT` characters.
        """
        tell = log or _quiet
        write = output or (lambda line, _at: tell(line))

        def say(line: str) -> None:
            tell(probe.shown(line))

        check = Check(
            name,
            probe,
            target,
            started=time.time(),
            say=say,
            output=lambda line, at: write(probe.shown(line), at),
        )
        try:
            outcome = await self._table[probe.prober](check)
        except Exception as exc:  # a check that raises is UNKNOWN, not a dead monitor
            outcome = Outcome(
                check.started,
                State.UNKNOWN,
                time.time() - check.started,
                error=f"internal error: {self._failed(exc)}",
            )
        error, value = outcome.error, outcome.value
        return dataclasses.replace(
            outcome,
            error=None if error is None else cut(probe.shown(error), MAX_TEXT),
            value=cut(value, MAX_TEXT) if isinstance(value, str) else value,
        )


def make_probers(supervisor: Supervisor, failed: Callable[[Exception], str]) -> Probers:
    """The table of probers; scripts run on ``supervisor``'s workers; ``failed`` is told
    what a prober raised."""
    return Probers(
        {
            "websocket": probe_websocket,
            "script": functools.partial(probe_script, supervisor),
        },
        failed,
    )


def _quiet(_line: str) -> None:
    pass
