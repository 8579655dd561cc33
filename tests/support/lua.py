"""Lua scripts run in-process: :func:`~wsprobe.lua.execute.run_one` on this process's
own event loop, no worker process, for tests that need only a script's outcome and
lines (what the supervisor adds is tested through ``wsprobe run`` and the agent); and
many scripts of a table as one run, through its workers."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsprobe.lua.eventloop import run_event_loop
from wsprobe.lua.execute import RunContext, inline_step, run_collected
from wsprobe.lua.job import Job, RunSettings
from wsprobe.lua.output import Line, ScriptOutcome
from wsprobe.lua.runner import run_outcomes
from wsprobe.options import make_options
from wsprobe.services.shared import RunServices

__all__ = ["Ran", "run_as_one_run", "run_lua", "run_together"]


@dataclass(frozen=True)
class Ran:
    """How a script ended and the lines it printed and logged, in order."""

    outcome: ScriptOutcome
    lines: list[Line]

    @property
    def printed(self) -> str:
        """What the script printed, one line each, as ``wsprobe run`` writes it."""
        return "".join(line.text + "\n" for line in self.lines if line.kind == "print")

    @property
    def logged(self) -> list[tuple[str, str]]:
        """The level and text of each line the script logged."""
        return [(line.kind, line.text) for line in self.lines if line.kind != "print"]


def run_lua(
    source: str | bytes,
    *,
    name: str = "check.lua",
    state_dir: Path | None = None,
    **settings: Any,
) -> Ran:
    """Run ``source`` in-process with the run's defaults, or ``settings``
    (:class:`~wsprobe.lua.job.RunSettings`' fields; ``options`` by default
    :func:`~wsprobe.options.make_options`'s)."""
    (ran,) = run_together({name: source}, state_dir=state_dir, **settings)
    return ran


def run_together(
    sources: dict[str, str | bytes], *, state_dir: Path | None = None, **settings: Any
) -> list[Ran]:
    """Run the scripts ``sources`` names at once, in-process on one event loop with
    the same services, as a worker runs them; as :func:`run_lua` otherwise."""
    run = RunSettings(
        options=settings.pop("options", None) or make_options(), state_dir=state_dir, **settings
    )
    jobs = [
        Job(name, source=source.encode() if isinstance(source, str) else source)
        for name, source in sources.items()
    ]

    async def scenario() -> list[tuple[ScriptOutcome, list[Line]]]:
        services = RunServices(run.options, state_dir=run.state_dir)
        context = RunContext(run)
        try:
            return await asyncio.gather(
                *(
                    run_collected(job, context, run_step=inline_step, services=services)
                    for job in jobs
                )
            )
        finally:
            await services.close()

    return [Ran(*ran) for ran in run_event_loop(scenario())]


def run_as_one_run(
    sources: Sequence[str], folder: Path, **settings: Any
) -> list[tuple[bool, list[str]]]:
    """Each of ``sources`` as a script (written to ``folder``) of one ``wsprobe run``
    with ``settings``: the runner, the supervisor and its workers, each script in a
    state of its own. Per source, whether its script succeeded and the lines it
    printed (a table's cases at the cost of one run)."""
    names = []
    for index, source in enumerate(sources):
        names.append(f"s{index:03}.lua")
        (folder / names[-1]).write_text(source)
    stdout = io.StringIO()
    outcomes, _ = run_outcomes(
        [str(folder / name) for name in names],
        RunSettings(options=make_options(), **settings),
        stdout=stdout,
        stderr=io.StringIO(),
    )
    succeeded = {outcome.name: outcome.ok for outcome in outcomes}
    printed = stdout.getvalue().splitlines()
    return [
        (
            succeeded[name],
            [line.removeprefix(f"[{name}] ") for line in printed if line.startswith(f"[{name}] ")],
        )
        for name in names
    ]
