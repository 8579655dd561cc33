"""``wsprobe run``: many Lua scripts at once on one event loop, each bounded.

Each script is a coroutine in its own Lua state; a ``ws`` call yields to this
module, which performs it with the asyncio client and resumes the script with the
reply or the error. A script waiting on a slow server costs a socket, not a thread.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .client import probe_with_async
from .errors import Error, InvalidOption, InvalidURL
from .exchange import Result
from .lua import ConversionError, LuaScript, ScriptLimits, Step
from .options import Options, options_from_mapping
from .session import AsyncSession, open_session_async

__all__ = ["RunSettings", "ScriptOutcome", "run_scripts"]

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
# From this many scripts in flight, each waiting script's Lua state is compacted.
_COMPACT_FROM = 1000


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything ``wsprobe run`` was told, validated."""

    options: Options
    env_names: tuple[str, ...] = ()
    script_timeout: float = 60.0
    memory_limit_mib: int = 64
    instruction_limit: int = 100_000_000
    concurrency: int = 200
    log_level: str = "info"
    json_output: bool = False

    @classmethod
    def from_text(
        cls,
        *,
        options: Options,
        env_names: Sequence[str],
        script_timeout: str,
        memory_limit: str,
        instruction_limit: str,
        concurrency: str,
        log_level: str,
        json_output: bool,
    ) -> RunSettings:
        """Validate the command line's text values; errors name the flag."""
        return cls(
            options=options,
            env_names=tuple(env_names),
            script_timeout=_positive("--script-timeout", script_timeout, float),
            memory_limit_mib=_positive("--memory-limit", memory_limit, int),
            instruction_limit=_positive("--instruction-limit", instruction_limit, int) * 1_000_000,
            concurrency=_positive("--concurrency", concurrency, int),
            log_level=log_level,
            json_output=json_output,
        )

    def limits(self) -> ScriptLimits:
        """The per-script bounds, with the messages a script that hits them gets."""
        return ScriptLimits(
            memory=self.memory_limit_mib * 1024 * 1024,
            instructions=self.instruction_limit,
            seconds=self.script_timeout,
            memory_message=f"script exceeded its memory limit of {self.memory_limit_mib} MiB",
            cpu_message="script exceeded its CPU limit of "
            f"{self.instruction_limit // 1_000_000} million instructions",
            time_message=f"script exceeded its time limit of {self.script_timeout:g}s",
        )


@dataclass
class ScriptOutcome:
    """How one script ended."""

    name: str
    ok: bool
    result: Any = None
    error: str | None = None
    duration: float = 0.0


def run_scripts(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> int:
    """Run every script; return 0 when all succeeded, 1 otherwise."""
    output = _Output(paths, settings, stdout, stderr)
    outcomes = _event_loop_run(_run_all(paths, settings, output))
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _event_loop_run(
    coroutine: Coroutine[Any, Any, list[ScriptOutcome]],
) -> list[ScriptOutcome]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def _run_all(
    paths: Sequence[str], settings: RunSettings, output: _Output
) -> list[ScriptOutcome]:
    context = _Context(settings, output)
    outcomes: list[ScriptOutcome | None] = [None] * len(paths)
    queue = iter(enumerate(paths))

    # A fixed set of workers rather than a task per script: thousands of scripts
    # queued behind a semaphore would cost a task and a wake-up each.
    async def worker() -> None:
        for index, path in queue:
            outcome = await _run_one(path, context)
            output.finished(outcome)
            outcomes[index] = outcome

    await asyncio.gather(*(worker() for _ in range(min(settings.concurrency, len(paths)))))
    return [outcome for outcome in outcomes if outcome is not None]


class _Context:
    """What every script of a run shares, computed once."""

    def __init__(self, settings: RunSettings, output: _Output) -> None:
        self.settings = settings
        self.output = output
        self.limits = settings.limits()
        self.environment = {
            name: os.environ[name] for name in settings.env_names if name in os.environ
        }


async def _run_one(path: str, context: _Context) -> ScriptOutcome:
    output, settings = context.output, context.settings
    name = output.name_of(path)
    started = time.monotonic()
    try:
        with open("/dev/stdin" if path == "-" else path, "rb") as file:
            source = file.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        return ScriptOutcome(name, ok=False, error=f"{name}: cannot read script: {reason}")
    script = LuaScript(
        name,
        source,
        limits=context.limits,
        environment=context.environment,
        write=lambda line: output.write(name, line),
        log=lambda level, line: output.log(name, level, line),
    )
    requests = _Requests(script, settings.options)
    try:
        async with asyncio.timeout(settings.script_timeout):
            step = script.start()
            if step.kind == "yield" and settings.concurrency >= _COMPACT_FROM:
                # Thousands of scripts waiting at once: memory, not CPU, is the limit.
                script.compact()
            while step.kind == "yield":
                step = await requests.serve(step)
    except TimeoutError:
        step = Step("error", message=context.limits.time_message)
    finally:
        # Whatever the outcome, no session outlives its script.
        await requests.close_sessions()
    duration = time.monotonic() - started
    if step.kind == "error":
        return ScriptOutcome(name, ok=False, error=step.message, duration=duration)
    result = step.values[0] if step.values else None
    return ScriptOutcome(name, ok=True, result=result, duration=duration)


class _Requests:
    """Performs what one script's ``ws`` calls ask for, and owns its sessions."""

    def __init__(self, script: LuaScript, base: Options) -> None:
        self._script = script
        self._base = base
        self._sessions: dict[int, AsyncSession] = {}
        self._next_id = 1

    async def serve(self, step: Step) -> Step:
        handler = getattr(self, f"_{step.op}")
        try:
            value = await handler(*step.args)
        except Error as exc:
            return self._script.resume(False, exc)
        return self._script.resume(True, value)

    async def close_sessions(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()

    async def _send_recv(self, url: bytes, data: bytes, options: Any) -> str:
        return (await self._call(url, data, options)).reply

    async def _probe(self, url: bytes, data: bytes, options: Any) -> dict[str, Any]:
        return _probe_table(await self._call(url, data, options))

    async def _call(self, url: bytes, data: bytes, options: Any) -> Result:
        return await probe_with_async(
            _argument_text(url, "url"), _argument_text(data, "data"), self._options(options)
        )

    async def _connect(self, url: bytes, options: Any) -> int:
        values = self._option_values(options)
        binary = values.pop("binary", False)
        if not isinstance(binary, bool):
            raise InvalidOption("binary", "expected true or false")
        session = await open_session_async(
            _argument_text(url, "url"), options_from_mapping(values, self._base), binary=binary
        )
        session_id, self._next_id = self._next_id, self._next_id + 1
        self._sessions[session_id] = session
        return session_id

    async def _session_send(self, session_id: int, data: bytes, kind: bytes) -> None:
        session = self._session(session_id)
        if kind == b"binary":
            session.send_binary(data)
        else:
            session.send(_argument_text(data, "data"))

    async def _session_recv(self, session_id: int, timeout: float | None) -> tuple[Any, str]:
        payload = await self._session(session_id).recv(timeout)
        return payload, "binary" if isinstance(payload, bytes) else "text"

    async def _session_ping(self, session_id: int, timeout: float | None) -> float:
        return await self._session(session_id).ping(timeout)

    async def _session_close(
        self, session_id: int, code: int | None, reason: bytes | None
    ) -> None:
        # Kept after closing: using it again says which connection is closed.
        await self._session(session_id).close(
            1000 if code is None else int(code), _text_or_empty(reason)
        )

    def _session(self, session_id: int) -> AsyncSession:
        # Ids come from the prelude's private key: a script cannot forge one.
        return self._sessions[session_id]

    def _options(self, table: Any) -> Options:
        if table is None:
            return self._base
        return options_from_mapping(self._option_values(table), self._base)

    def _option_values(self, table: Any) -> dict[str, Any]:
        if table is None:
            return {}
        try:
            values = self._script.to_python(table)
        except ConversionError as exc:
            raise InvalidOption("options", str(exc)) from None
        if isinstance(values, list) and not values:
            return {}
        if not isinstance(values, dict):
            raise InvalidOption("options", "expected a table of name = value")
        return values


def _text_or_empty(value: bytes | None) -> str:
    return "" if value is None else _argument_text(value, "reason")


def _argument_text(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        if name == "url":
            raise InvalidURL(value.decode(errors="replace"), "not valid UTF-8") from None
        raise InvalidOption(name, "not valid UTF-8 text", kind="argument") from None


def _probe_table(result: Result) -> dict[str, Any]:
    facts = result.facts()
    expires = facts["cert_expires"]
    facts["cert_expires"] = expires.timestamp() if expires is not None else None
    facts["timings"] = {
        name: value for name, value in facts["timings"].items() if value is not None
    }
    # Absent facts are left out, so that a script sees nil rather than json.null.
    return {name: value for name, value in facts.items() if value is not None}


class _Output:
    """Whole lines only, each written at once, so concurrent scripts never interleave."""

    def __init__(
        self, paths: Sequence[str], settings: RunSettings, stdout: TextIO, stderr: TextIO
    ) -> None:
        self._settings = settings
        self._stdout = stdout
        self._stderr = stderr
        self._tagged = len(paths) > 1
        self._min_level = _LEVELS[settings.log_level]

    @staticmethod
    def name_of(path: str) -> str:
        return "stdin" if path == "-" else os.path.basename(path)

    def write(self, name: str, text: str) -> None:
        # With --json, stdout carries only the JSON lines; printed text goes to stderr.
        stream = self._stderr if self._settings.json_output else self._stdout
        stream.write(self._tag(name, text) + "\n")
        stream.flush()

    def log(self, name: str, level: str, text: str) -> None:
        if _LEVELS[level] < self._min_level:
            return
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        self._stderr.write(f"{stamp}Z {level.upper()} {name}: {text}\n")
        self._stderr.flush()

    def finished(self, outcome: ScriptOutcome) -> None:
        if self._settings.json_output:
            record = {
                "name": outcome.name,
                "ok": outcome.ok,
                "result": outcome.result,
                "error": outcome.error,
                "duration": round(outcome.duration, 6),
            }
            self._stdout.write(_compact_json(record) + "\n")
            self._stdout.flush()
        elif not outcome.ok:
            assert outcome.error is not None
            self._stderr.write(self._error_line(outcome) + "\n")
            self._stderr.flush()
        elif outcome.result is not None:
            value = outcome.result
            shown = value if isinstance(value, str) else _compact_json(value)
            self.write(outcome.name, shown)

    @staticmethod
    def _error_line(outcome: ScriptOutcome) -> str:
        error = outcome.error or ""
        return error if error.startswith(f"{outcome.name}:") else f"{outcome.name}: {error}"

    def _tag(self, name: str, text: str) -> str:
        if not self._tagged:
            return text
        return "\n".join(f"[{name}] {line}" for line in text.split("\n"))


def _positive(flag: str, text: str, kind: type[int] | type[float]) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise InvalidOption(flag, f'"{text}" is not a number') from None
    if not value > 0:
        raise InvalidOption(flag, f"must be positive, got {text}")
    return value


def _compact_json(value: Any) -> str:
    # The same shape json.encode gives a script.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
