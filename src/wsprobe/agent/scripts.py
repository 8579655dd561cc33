"""Scripted checks: the one place the agent runs a Lua script.

Script execution is moving into supervised worker processes; that change replaces
the body of :func:`run_monitor_script` and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ..lua.runner import RunSettings, ScriptOutcome, run_script
from ..options import Options

__all__ = ["run_monitor_script"]


async def run_monitor_script(
    path: str,
    *,
    name: str,
    options: Options,
    env_names: Sequence[str],
    target: str | None = None,
    log: Callable[[str], None] | None = None,
) -> ScriptOutcome:
    """Run the script at ``path`` once, bounded by ``options.timeout``.

    ``os.getenv`` sees the variables named in ``env_names`` and, for ``/probe``,
    ``TARGET``. Printed lines and log lines go to ``log`` when given.
    """
    settings = RunSettings(options=options, script_timeout=options.timeout)
    environment = {key: os.environ[key] for key in env_names if key in os.environ}
    if target is not None:
        environment["TARGET"] = target

    def write(line: str) -> None:
        if log is not None:
            log(line)

    return await run_script(
        path,
        settings,
        name=name,
        environment=environment,
        write=write,
        log=lambda level, line: write(f"{level.upper()} {line}"),
    )
