"""Run one check now: a declarative exchange judged by ``wsprobe check``'s engine, or a script."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..client import probe_with_async
from ..errors import ConnectError, Error, InvalidOption, InvalidURL
from ..lua.result import STATUSES
from ..models import Result
from ..plugin import State, judge, judge_error
from ..url import redact
from .config import Probe
from .outcome import Outcome
from .scripts import run_monitor_script

if TYPE_CHECKING:
    from ..lua.supervisor import Supervisor

__all__ = ["run_check"]

# The convention's status a script returned, by the state it means (for the reason).
_RETURNED = {state: status for status, state in STATUSES.items()}


async def run_check(
    probe: Probe,
    *,
    name: str,
    target: str | None,
    supervisor: Supervisor,
    log: Callable[[str], None] | None = None,
    output: Callable[[str, float], None] | None = None,
) -> Outcome:
    """Run ``probe`` against ``target`` (a script's ``TARGET``; may be ``None`` for one).

    Never raises for what the server or the script did: that is the outcome. A
    script runs on one of the agent's workers (``supervisor``) and its verdict is
    the runner's (:mod:`wsprobe.lua.result`). ``log`` receives a readable account of
    the check, line by line; ``output`` what a script printed or logged, with the
    time of each line (default: to ``log``).
    """
    say = log or _quiet
    started = time.time()
    clock = time.monotonic()
    if probe.script is not None:
        say(f"running script {probe.script} (timeout {probe.timeout:g}s)")
        ran = await run_monitor_script(
            supervisor,
            probe.script,
            name=name,
            options=probe.options,
            env_names=probe.env,
            target=target,
            output=output or (lambda line, _at: say(line)),
        )
        duration = time.monotonic() - clock
        state = State.of(ran.status)
        value = _plain(ran.value)
        if ran.signal is not None:
            say(f"script ended with signal {ran.signal}: {state.name}")
            return Outcome(
                started,
                state,
                duration,
                error=f"the script ended with signal {ran.signal}",
                signal=ran.signal,
            )
        if ran.error is not None:
            say(f"script failed: {ran.error}")
            return Outcome(started, state, duration, value=value, error=ran.error)
        say(f"script returned {value!r}: {state.name}")
        reason = None if state is State.OK else f"the script returned {_RETURNED[ran.status]}"
        return Outcome(started, state, duration, value=value, error=reason)
    assert target is not None  # a declarative check always has a URL
    say(f"sending {json.dumps(probe.send)} to {redact(target)} (timeout {probe.timeout:g}s)")
    try:
        result = await probe_with_async(target, probe.send, probe.options)
    except (InvalidURL, InvalidOption) as exc:
        say(f"cannot probe: {exc}")
        return Outcome(started, State.UNKNOWN, time.monotonic() - clock, error=str(exc))
    except Error as exc:
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
    verdict = judge(result, probe.expect, datetime.datetime.now(datetime.UTC))
    say(f"reply {_excerpt(result.reply)} from {result.peer}")
    say(f"{verdict.state.name}: {verdict.text}")
    return _declarative(started, result, verdict.state, verdict.text)


def _declarative(started: float, result: Result, state: State, text: str) -> Outcome:
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


def _plain(value: Any) -> float | str | None:
    # History and metrics keep numbers and text; anything else is kept as its JSON.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _excerpt(text: str, limit: int = 200) -> str:
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)


def _quiet(_line: str) -> None:
    pass
