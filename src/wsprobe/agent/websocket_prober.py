"""The declarative prober: one exchange with ``probe.send``, judged by :mod:`wsprobe.plugin`,
the judgement of ``wsprobe check URL``."""

from __future__ import annotations

import asyncio
import datetime
import json
import time

from ..client import probe_with_async
from ..errors import ConnectError, Error, InvalidOption, InvalidURL, forget_tracebacks
from ..models import Result
from ..plugin import State, judge, judge_error
from ..url import redact
from .outcome import Outcome
from .prober import Check

__all__ = ["probe_websocket"]

#: Replies longer than this are judged on a thread: parsing a large JSON reply
#: must not hold the event loop that every other check and ``/metrics`` share.
JUDGE_ON_THREAD = 64 * 1024


async def probe_websocket(check: Check) -> Outcome:
    """Send ``check.probe.send`` to ``check.target`` and judge the reply."""
    probe, target, say, started = check.probe, check.target, check.say, check.started
    assert target is not None  # a declarative check always has a URL
    clock = time.monotonic()
    # The message is the configuration's (it may hold a secret): its size only.
    say(f"sending {len(probe.send)} characters to {redact(target)} (timeout {probe.timeout:g}s)")
    try:
        result = await probe_with_async(target, probe.send, probe.options)
    except (InvalidURL, InvalidOption) as exc:
        say(f"cannot probe: {exc}")
        return Outcome(started, State.UNKNOWN, time.monotonic() - clock, error=str(exc))
    except Error as exc:
        # Only its text is kept: its frames would hold the connection, which holds
        # the error, a cycle left to the agent's rare full collections.
        forget_tracebacks(exc)
        verdict = judge_error(exc)
        say(f"failed: {verdict.text}")
        status_code = exc.status if isinstance(exc, ConnectError) else None
        return Outcome(
            started,
            verdict.state,
            time.monotonic() - clock,
            error=verdict.text,
            status_code=status_code,
        )
    now = datetime.datetime.now(datetime.UTC)
    if len(result.reply) > JUDGE_ON_THREAD:
        verdict = await asyncio.to_thread(judge, result, probe.expect, now)
    else:
        verdict = judge(result, probe.expect, now)
    say(f"reply {_excerpt(result.reply)} from {result.peer}")
    say(f"{verdict.state.name}: {verdict.text}")
    return _outcome(started, result, verdict.state, verdict.text)


def _outcome(started: float, result: Result, state: State, text: str) -> Outcome:
    timings = result.timings
    phases = {
        "resolve": timings.dns,
        "connect": timings.connect,
        "tls": timings.tls,
        "upgrade": timings.upgrade,
        "reply": timings.reply,
    }
    expires = result.cert_expires
    return Outcome(
        started,
        state,
        timings.total,
        error=None if state is State.OK else text,
        timings={phase: value for phase, value in phases.items() if value is not None},
        status_code=result.status,
        cert_expires=expires.timestamp() if expires is not None else None,
    )


def _excerpt(text: str, limit: int = 1000) -> str:
    # debug=true's view of the reply: enough of a JSON document to read, never all of it.
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)
