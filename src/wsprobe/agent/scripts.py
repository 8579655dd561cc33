"""Scripted checks: the one place the agent runs a Lua script.

Script execution is moving into supervised worker processes; that change replaces
the body of :func:`run_monitor_script` and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..lua.runner import RunSettings, ScriptOutcome, run_script
from ..options import Options

if TYPE_CHECKING:
    from ..services.shared import RunServices

__all__ = ["run_monitor_script"]


async def run_monitor_script(
    path: str,
    *,
    name: str,
    options: Options,
    env_names: Sequence[str],
    services: RunServices,
    target: str | None = None,
    output: Callable[[str], None] | None = None,
) -> ScriptOutcome:
    """Run the script at ``path`` once, bounded by ``options.timeout``.

    ``services`` are the agent's (its store in the state directory, its cache, its
    HTTP pool), shared by every script it runs and closed by the agent.
    ``os.getenv`` sees the variables named in ``env_names`` and, for ``/probe``,
    ``TARGET``. Printed lines and log lines (``LEVEL text``) go to ``output`` when given.
    """
    settings = RunSettings(options=options, script_timeout=options.timeout)
    environment = {key: os.environ[key] for key in env_names if key in os.environ}
    if target is not None:
        environment["TARGET"] = target

    def write(line: str) -> None:
        if output is not None:
            output(line)

    return await run_script(
        path,
        settings,
        name=name,
        environment=environment,
        write=write,
        log=lambda level, line: write(f"{level.upper()} {line}"),
        services=services,
    )
