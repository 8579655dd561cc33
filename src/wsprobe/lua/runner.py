"""``wsprobe run``: many scripts, each bounded, in supervised worker processes.

The top of the Lua pipeline. :func:`run_scripts` makes a :class:`~.job.Job` of
each script, hands them to a :class:`~.supervisor.Supervisor`, whose worker
processes (:mod:`.worker`) run each with :func:`~.execute.run_one`, and writes each
script's lines and record (:mod:`.output`) as it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import TextIO

from .eventloop import run_event_loop
from .job import Job, RunSettings
from .output import Output, ScriptOutcome
from .supervisor import Supervisor

__all__ = ["RunSettings", "run_all", "run_outcomes", "run_scripts"]


def run_scripts(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> int:
    """Run every script; return 0 when all succeeded, 1 otherwise, 130 or 143 when
    interrupted by SIGINT or SIGTERM (every script still gets its record).

    Raises :class:`~.output.OutputError` when standard output or error cannot be written.
    """
    outcomes, signal_number = run_outcomes(paths, settings, stdout=stdout, stderr=stderr)
    if signal_number:
        return 128 + signal_number
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def run_outcomes(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> tuple[list[ScriptOutcome], int]:
    """Run every script, writing as :func:`run_scripts` does; return how each ended
    and the number of the signal that interrupted the run (0 when none did)."""
    output = Output(
        paths,
        json_output=settings.json_output,
        log_level=settings.log_level,
        stdout=stdout,
        stderr=stderr,
    )
    jobs = [Job(output.name_of(path), path=path) for path in paths]
    return run_event_loop(run_all(jobs, settings, output))


async def run_all(
    jobs: Sequence[Job], settings: RunSettings, output: Output
) -> tuple[list[ScriptOutcome], int]:
    """Run ``jobs``, writing each script's lines and record as it ends; return the
    outcomes and the number of the signal (SIGINT, SIGTERM) that interrupted the
    run, or 0. Output errors propagate (the workers are stopped first)."""
    loop = asyncio.get_running_loop()
    received: list[int] = []
    outcomes: list[ScriptOutcome] = []
    async with Supervisor(settings, workers=min(settings.worker_count(), len(jobs))) as supervisor:

        def stop(number: int) -> None:
            received.append(number)
            supervisor.interrupt()

        handled = []
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(number, stop, int(number))
                handled.append(number)
        try:
            tasks = [asyncio.create_task(supervisor.run(job)) for job in jobs]
            for finished in asyncio.as_completed(tasks):
                outcome, lines = await finished
                output.lines(outcome.name, lines)
                output.finished(outcome)
                outcomes.append(outcome)
        finally:
            for number in handled:
                loop.remove_signal_handler(number)
    return outcomes, received[0] if received else 0
