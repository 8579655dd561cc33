"""The script prober: the one place the agent runs a Lua script, in the supervised
workers of :mod:`wsprobe.lua.supervisor`, as ``wsprobe run`` runs its scripts.

Its state, value and words are the script's result as the runner judged it
(:class:`wsprobe.lua.result.ScriptResult`): what ``wsprobe run --json`` records and
``wsprobe check --script`` prints, said the same way.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from ..lua.job import Job
from .board import OUTPUT_LINE_LENGTH, OUTPUT_LINES
from .outcome import MAX_TEXT, Outcome
from .prober import Check

if TYPE_CHECKING:
    from ..lua.supervisor import Supervisor

__all__ = ["probe_script"]


async def probe_script(supervisor: Supervisor, check: Check) -> Outcome:
    """Run ``check``'s script once on one of ``supervisor``'s workers, its time limit
    ``probe.timeout`` and its calls' defaults ``probe.options``.

    The workers hold the store (in the agent's state directory) and the HTTP pools;
    the supervisor the one cache of all the agent's scripts. ``os.getenv`` sees the
    variables named in ``probe.env`` and, for ``/probe``, ``TARGET``. What the script
    printed and logged (``LEVEL text`` for logs) goes to ``check.output`` once it
    ended, each line with the Unix time it was written: what the board shows, cut
    where the script runs (``… N earlier lines``, then the last lines, each cut).
    """
    probe, say = check.probe, check.say
    assert probe.script is not None
    say(f"running script {probe.script} (timeout {probe.timeout:g}s)")
    environment = {key: os.environ[key] for key in probe.env if key in os.environ}
    if check.target is not None:
        environment["TARGET"] = check.target
    job = Job(
        check.name,
        path=probe.script,
        environment=environment,
        script_timeout=probe.timeout,
        options=probe.options,
        output_limit=(OUTPUT_LINES - 1, OUTPUT_LINE_LENGTH),
        value_limit=MAX_TEXT,
    )
    clock = time.monotonic()
    ran, lines = await supervisor.run(job)
    duration = time.monotonic() - clock
    for line in lines:
        text = line.text if line.kind == "print" else f"{line.kind.upper()} {line.text}"
        check.output(text, line.at)
    judged = ran.judged
    say(f"{judged.state.name}: {judged.text(check.name)}")
    return Outcome(
        check.started,
        judged.state,
        duration,
        value=None if judged.signal is not None else _plain(judged.value),
        error=judged.reason(check.name),
        signal=judged.signal,
    )


def _plain(value: Any) -> float | str | None:
    # History and metrics keep numbers and text; anything else is kept as its JSON.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
