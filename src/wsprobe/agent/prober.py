"""What a prober is asked and what it answers: one :class:`Check`, one :class:`~.outcome.Outcome`.

A prober knows nothing of the schedule, the history or HTTP: the scheduler and
``/probe`` hand it a check, and take the outcome it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import Error
from .config import Probe
from .outcome import Outcome

__all__ = ["Busy", "Check", "Prober"]


class Busy(Error):
    """No room for one more check now (``/probe`` answers 503); the text says which
    bound is reached."""


@dataclass(frozen=True, slots=True)
class Check:
    """One run of ``probe``, named ``name``, against ``target`` (a declarative check's
    URL; a script's ``TARGET``, ``None`` for a monitor), started at Unix time ``started``.

    ``say`` receives a readable account of the check, line by line (``/probe``'s
    ``debug=true``); ``output`` what a script printed or logged, with the time of
    each line.
    """

    name: str
    probe: Probe
    target: str | None
    started: float
    say: Callable[[str], None]
    output: Callable[[str, float], None]


#: Runs one check to its outcome; never raises for what the server or the script did.
Prober = Callable[[Check], Awaitable[Outcome]]
