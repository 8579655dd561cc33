"""Scripted checks: the one place the agent runs a Lua script, in the supervised
workers of :mod:`wsprobe.lua.supervisor`, as ``wsprobe run`` runs its scripts."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..lua.job import Job
from ..lua.output import ScriptOutcome

if TYPE_CHECKING:
    from ..lua.supervisor import Supervisor
    from ..options import Options

__all__ = ["run_monitor_script"]


async def run_monitor_script(
    supervisor: Supervisor,
    path: str,
    *,
    name: str,
    options: Options,
    env_names: Sequence[str],
    target: str | None = None,
    output: Callable[[str, float], None] | None = None,
) -> ScriptOutcome:
    """Run the script at ``path`` once on one of ``supervisor``'s workers, its time
    limit ``options.timeout`` and its calls' defaults ``options``.

    The workers hold the store (in the agent's state directory) and the HTTP pools;
    the supervisor the one cache of all the agent's scripts. ``os.getenv`` sees the
    variables named in ``env_names`` and, for ``/probe``, ``TARGET``. What the script
    printed and logged (``LEVEL text`` for logs) goes to ``output`` once it ended,
    each line with the Unix time it was written.
    """
    environment = {key: os.environ[key] for key in env_names if key in os.environ}
    if target is not None:
        environment["TARGET"] = target
    job = Job(
        name,
        path=path,
        environment=environment,
        script_timeout=options.timeout,
        options=options,
    )
    outcome, lines = await supervisor.run(job)
    if output is not None:
        for line in lines:
            text = line.text if line.kind == "print" else f"{line.kind.upper()} {line.text}"
            output(text, line.at)
    return outcome
