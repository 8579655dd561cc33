"""Notifier templates rendered in a child process bounded in CPU, memory and time.

Jinja2's sandbox keeps a template away from the process's objects, but not from its
time and memory (a nested loop over ``range(100000)``, ``'x'.ljust(10**9)``,
``lipsum(10**5)``). A template is the operator's, yet it runs on every notification of
a long-running agent: so it runs in ``python -m wsprobe.agent.alerting.renderer``,
which reads one JSON request on its standard input, limits itself (address space,
CPU seconds) and answers one JSON line. Past :data:`WALL_SECONDS` it is killed; what
went wrong becomes the template's one-line problem, and the notification goes out
with the default text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .template import Template, render

__all__ = ["CPU_SECONDS", "MEMORY_BYTES", "WALL_SECONDS", "Job", "render_bounded"]

#: A render's bounds: seconds of CPU, bytes of address space, seconds of wall clock.
CPU_SECONDS = 2
MEMORY_BYTES = 512 * 1024 * 1024
WALL_SECONDS = 5.0

#: A template to fill (``None``: the default text), the default text's maker, and the
#: most characters kept.
Job = tuple[Template | None, Callable[[Mapping[str, Any]], str], int]


async def render_bounded(
    jobs: Sequence[Job], fields: Mapping[str, Any]
) -> list[tuple[str, str | None]]:
    """Each job's text and problem, as :func:`.template.render` gives them, with every
    template rendered in one bounded child process (none started without a template)."""
    sources = [(template.source, limit) for template, _, limit in jobs if template is not None]
    answers: list[tuple[str | None, str | None]] = []
    if sources:
        answers = await _child(sources, fields)
    results: list[tuple[str, str | None]] = []
    for template, default, limit in jobs:
        if template is None:
            results.append(render(None, fields, default, limit))
            continue
        text, problem = answers.pop(0)
        if text is None:
            results.append((render(None, fields, default, limit)[0], problem))
        else:
            results.append((text, problem))
    return results


async def _child(
    sources: list[tuple[str, int]], fields: Mapping[str, Any]
) -> list[tuple[str | None, str | None]]:
    request = json.dumps({"templates": sources, "fields": fields}, default=str).encode()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(request), WALL_SECONDS)
    except TimeoutError:
        why = f"template took longer than {WALL_SECONDS:g}s"
        return [(None, why)] * len(sources)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    try:
        answers = json.loads(out)
        return [(text, problem) for text, problem in answers]
    except (ValueError, TypeError):
        why = _death(process.returncode)
        return [(None, why)] * len(sources)


def _death(code: int | None) -> str:
    # RLIMIT_CPU ends the child with SIGXCPU; RLIMIT_AS makes it fail with MemoryError.
    if code == -24:
        return f"template used more than {CPU_SECONDS}s of CPU"
    return f"template failed: it used more than {MEMORY_BYTES >> 20} MiB or crashed (exit {code})"


def _main() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    request = json.loads(sys.stdin.buffer.read())
    fields = request["fields"]
    answers = []
    for source, limit in request["templates"]:
        text, problem = render(Template(source), fields, lambda _: "", int(limit))
        answers.append((None, problem) if problem is not None else (text, None))
    sys.stdout.write(json.dumps(answers))


if __name__ == "__main__":
    _main()
