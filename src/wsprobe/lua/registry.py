"""Everything a script can call that Python serves, registered in this one place.

Each :class:`Operation` has the name the prelude calls it by, its arguments as
Lua hands them over (each :class:`Argument`'s name and Lua type, in order), what it
returns, and a handler taking the script's :class:`ScriptContext` first.
Operations run either *in place*, inside the Lua step (``host.NAME(...)`` in the
prelude: quick, no I/O), or as a *request*: the script's coroutine yields
(``request("NAME", ...)``), :func:`serve` awaits the handler on the event loop and
resumes the script with its value or its error. A test checks that the prelude
calls exactly the operations registered here, each with as many arguments as it
declares, and that each handler takes the arguments declared.

To give scripts something new: register its handler here, call it from the
prelude, and document it in docs/lua-api.md's table of what a script sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import Error, InvalidOption, InvalidURL, ScriptCallError, forget_tracebacks
from ..options import Options, options_from_mapping
from . import jsoncodec
from .convert import ConversionError

if TYPE_CHECKING:
    from ..async_session import AsyncSession
    from ..models import Result, Timings
    from ..services.shared import RunServices
    from .runtime import LuaScript, Request, Step

__all__ = [
    "IN_PLACE",
    "MAX_TIMED_CALLS",
    "REQUESTS",
    "Argument",
    "Operation",
    "ScriptContext",
    "StepRunner",
    "serve",
]

#: The timings kept per script (for ``check --script``'s perfdata): its first calls.
MAX_TIMED_CALLS = 100

StepRunner = Callable[..., Awaitable[Any]]
"""Runs one Lua step, ``await run_step(function, *args)``, and returns what
``function`` returned (a :data:`Step`): the workers run it on a step thread the
supervisor watches."""


class ScriptContext:
    """What the operations of one script share: its state, options, sessions and output.

    ``run_step`` runs a Lua step (on a watched step thread in a worker).
    ``services`` are the store, cache and HTTP client of the run. ``ident`` is the
    monitor's identifier, the script's ``EXEC_IDENT`` and its store namespace: by
    default its name. ``owner`` names the script to the run's cache (unique in the
    run: a worker's scripts share their supervisor's cache). ``calls`` collects the
    timings of the ``ws.send_recv``/``ws.probe`` calls the script made (the first
    :data:`MAX_TIMED_CALLS`).
    """

    def __init__(
        self,
        name: str,
        options: Options,
        *,
        write: Callable[[str], None],
        log: Callable[[str, str], None],
        run_step: StepRunner,
        services: RunServices,
        ident: str | None = None,
        owner: Hashable | None = None,
        max_sessions: int = 100,
        session_bytes: int = 0,
    ) -> None:
        self.name = name
        self.options = options
        self.write = write
        self.log = log
        self.run_step = run_step
        self.services = services
        self.ident = name if ident is None else ident
        # A token of its own by default: the context itself would refer to itself.
        self.owner: Hashable = object() if owner is None else owner
        self.calls: list[Timings] = []
        self.script: LuaScript | None = None
        self.sessions: dict[int, AsyncSession] = {}
        self._next_session = 1
        self._open: set[int] = set()
        self._max_sessions = max_sessions
        self._session_bytes = session_bytes
        self._unread: dict[int, int] = {}
        self._unread_total = 0

    @property
    def lua(self) -> LuaScript:
        """The script's Lua state (set once it is created)."""
        assert self.script is not None
        return self.script

    async def resume(self, ok: bool, value: Any) -> Step:
        """Resume the script with a request's value (``ok``) or error, as a Lua step."""
        step: Step = await self.run_step(self.lua.resume, ok, value)
        return step

    def reserve_session(self) -> int:
        """Make room for one more open session, or raise the limit's error; return
        the id the prelude will know it by.

        What Python holds for the script's sessions counts against its memory limit
        like the Lua state's own memory: ``session_bytes`` for each open one, and
        the data each keeps unread (:meth:`hold`)."""
        if len(self._open) >= self._max_sessions:
            raise ScriptCallError(f"script exceeded its session limit of {self._max_sessions}")
        self._charge(len(self._open) + 1)
        self.services.descriptors.take(self)
        session_id, self._next_session = self._next_session, self._next_session + 1
        return session_id

    def abandon_session(self, session_id: int) -> None:
        """The session :meth:`reserve_session` made room for did not open."""
        self.services.descriptors.give(self)
        self.hold(session_id, 0)

    @contextlib.contextmanager
    def descriptor(self) -> Iterator[None]:
        """Hold one of the worker's descriptors for a call (or raise the error)."""
        self.services.descriptors.take(self)
        try:
            yield
        finally:
            self.services.descriptors.give(self)

    def hold(self, session_id: int, held: int) -> None:
        """Session ``session_id`` keeps ``held`` bytes unread; raise the memory
        limit's error when they do not fit (its connection is then dropped, with
        what it kept)."""
        self._unread_total += held - self._unread.pop(session_id, 0)
        if held:
            self._unread[session_id] = held
        try:
            self._charge(len(self._open))
        except ScriptCallError:
            del self._unread[session_id]
            self._unread_total -= held
            raise

    def add_session(self, session_id: int, session: AsyncSession) -> None:
        """Keep ``session``, opened under the id :meth:`reserve_session` gave."""
        self.sessions[session_id] = session
        self._open.add(session_id)

    def session(self, session_id: object, method: str) -> AsyncSession:
        """The script's open or closed session ``session_id``; a handle the script
        forged (``next`` finds the private key of a real one) is its own error."""
        session = self.sessions.get(session_id) if type(session_id) is int else None
        if session is None:
            raise ScriptCallError(
                f"bad argument #1 to '{method}' (ws session expected, got a forged handle)"
            )
        return session

    def release_session(self, session_id: int) -> None:
        """The script closed a session: it no longer counts against its limits."""
        if session_id in self._open:
            self._open.remove(session_id)
            self.services.descriptors.give(self)
        self._charge(len(self._open))

    def _charge(self, sessions: int) -> None:
        self.lua.reserve(self._session_bytes * sessions + self._unread_total)

    async def close_sessions(self) -> None:
        """Close what the script left open (whatever its outcome), all at once."""
        sessions, self.sessions = self.sessions, {}
        self._open.clear()
        await asyncio.gather(*(session.close() for session in sessions.values()))
        self.services.descriptors.release(self)


class Argument(NamedTuple):
    """One argument of an operation: its name (the handler's parameter) and the Lua
    type the prelude passes (``"string"``, ``"table|nil"``, ``"any"``, ...)."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing a script can call: ``handler(context, *lua_arguments)``, which
    takes exactly ``arguments`` and gives what ``returns`` says (``""``: nothing)."""

    name: str
    arguments: tuple[Argument, ...]
    returns: str
    handler: Callable[..., Any]


IN_PLACE: dict[str, Operation] = {}
"""Operations run inside the Lua step; they return a value or raise an Error."""

REQUESTS: dict[str, Operation] = {}
"""Operations the script yields for; their handlers are coroutines."""


def _in_place(
    operation: str, /, *, returns: str = "", **arguments: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        IN_PLACE[operation] = Operation(operation, _arguments(arguments), returns, handler)
        return handler

    return register


def _request(
    operation: str, /, *, returns: str = "", **arguments: str
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        REQUESTS[operation] = Operation(operation, _arguments(arguments), returns, handler)
        return handler

    return register


def _arguments(declared: dict[str, str]) -> tuple[Argument, ...]:
    return tuple(Argument(name, kind) for name, kind in declared.items())


async def serve(context: ScriptContext, request: Request) -> Step:
    """Perform what the script asks for and resume it with the value or the error.

    Under ``with_timeout`` the call is cancelled when its deadline passes, and the
    script is resumed with an error that ``with_timeout`` turns into its own.
    """
    handler = REQUESTS[request.op].handler
    try:
        if request.deadline is None:
            value = await handler(context, *request.args)
        else:
            limit = asyncio.timeout(request.deadline - time.monotonic())
            try:
                async with limit:
                    value = await handler(context, *request.args)
            except TimeoutError:
                if not limit.expired():
                    raise
                # with_timeout compares its deadline with time.monotonic(), which the
                # loop's clock (uvloop rounds to milliseconds) may be a little ahead of.
                await _until(request.deadline)
                return await context.resume(False, "with_timeout: deadline passed")
    except Error as exc:
        forget_tracebacks(exc)
        return await context.resume(False, exc)
    return await context.resume(True, value)


# --- in place: output, time, json ---


@_in_place("write", text="string")
def _write(context: ScriptContext, text: bytes) -> None:
    context.write(_text(text))


@_in_place("log", level='"debug"|"info"|"warn"|"error"', text="string")
def _log(context: ScriptContext, level: bytes, text: bytes) -> None:
    context.log(_text(level), _text(text))


@_in_place("now", returns="Unix time in seconds, a float")
def _now(_context: ScriptContext) -> float:
    return time.time()


@_in_place("json_encode", value="any", returns="string")
def _json_encode(context: ScriptContext, value: Any) -> str:
    return jsoncodec.encode(context.lua.convert, value)


@_in_place("json_decode", text="string", returns="any")
def _json_decode(context: ScriptContext, text: bytes) -> Any:
    return jsoncodec.decode(context.lua.convert, text)


# --- requests: ws ---


@_request("send_recv", url="string", data="string", options="table|nil", returns="reply: string")
async def _send_recv(context: ScriptContext, url: bytes, data: bytes, options: Any) -> str:
    return (await _probe_call(context, url, data, options)).reply


@_request("probe", url="string", data="string", options="table|nil", returns="facts: table")
async def _probe(context: ScriptContext, url: bytes, data: bytes, options: Any) -> dict[str, Any]:
    facts = (await _probe_call(context, url, data, options)).facts()
    expires = facts["cert_expires"]
    facts["cert_expires"] = expires.timestamp() if expires is not None else None
    facts["timings"] = {
        name: value for name, value in facts["timings"].items() if value is not None
    }
    # Absent facts are left out, so that a script sees nil rather than json.null.
    return {name: value for name, value in facts.items() if value is not None}


@_request("connect", url="string", options="table|nil (plus binary)", returns="session id")
async def _connect(context: ScriptContext, url: bytes, options: Any) -> int:
    from ..async_session import open_session_async

    session_id = context.reserve_session()
    try:
        values = await _option_values(context, options)
        binary = values.pop("binary", False)
        merged = await _merged(context, values)
        session = await open_session_async(
            _argument(url, "url"),
            merged,
            binary=binary,
            hold=functools.partial(context.hold, session_id),
        )
    except BaseException:
        context.abandon_session(session_id)
        raise
    context.add_session(session_id, session)
    return session_id


@_in_place(
    "session_fact",
    session_id="number",
    name='"close_code"|"close_reason"|"subprotocol"',
    returns="value|nil",
)
def _session_fact(context: ScriptContext, session_id: int, name: bytes) -> Any:
    session = context.session(session_id, "session." + _text(name))
    if name == b"subprotocol":
        return session.subprotocol
    if session.close_code is None:  # nil until the server closed, as in ws.probe
        return None
    return session.close_code if name == b"close_code" else session.close_reason


@_request("session_send", session_id="number", data="string", kind='"text"|"binary"')
async def _session_send(context: ScriptContext, session_id: int, data: bytes, kind: bytes) -> None:
    session = context.session(session_id, "session:send")
    if kind == b"binary":
        session.send_binary(data)
    else:
        session.send(_argument(data, "data"))
    # Backpressure: a server that does not read holds the script back (until its
    # time limit), not unsent data in memory.
    await session.drain()


@_request(
    "session_recv",
    session_id="number",
    timeout="number|nil",
    returns='data: string, kind: "text"|"binary"',
)
async def _session_recv(
    context: ScriptContext, session_id: int, timeout: float | None
) -> tuple[str | bytes, str]:
    payload = await context.session(session_id, "session:recv").recv(timeout)
    return payload, "binary" if isinstance(payload, bytes) else "text"


@_request("session_ping", session_id="number", timeout="number|nil", returns="seconds")
async def _session_ping(context: ScriptContext, session_id: int, timeout: float | None) -> float:
    return await context.session(session_id, "session:ping").ping(timeout)


@_request("session_close", session_id="number", code="number|nil", reason="string|nil")
async def _session_close(
    context: ScriptContext, session_id: int, code: Any, reason: bytes | None
) -> None:
    # Kept after closing: using it again says which connection is closed.
    await context.session(session_id, "session:close").close(
        1000 if code is None else code, "" if reason is None else _argument(reason, "reason")
    )
    context.release_session(session_id)


async def _probe_call(context: ScriptContext, url: bytes, data: bytes, options: Any) -> Result:
    from ..client import probe_with_async

    values = await _option_values(context, options)
    merged = await _merged(context, values)
    with context.descriptor():
        result = await probe_with_async(_argument(url, "url"), _argument(data, "data"), merged)
    if len(context.calls) < MAX_TIMED_CALLS:
        context.calls.append(result.timings)
    return result


async def _merged(context: ScriptContext, values: dict[str, Any]) -> Options:
    if not values:
        return context.options
    # Checking options loads a cafile (or the system store, 20 ms): a file the
    # script names is read as a step of the script, never on the event loop.
    merged: Options = await context.run_step(options_from_mapping, values, context.options)
    return merged


# --- Monsta's globals and modules, served by wsprobe.services ---


@_in_place("uuid4", returns="string")
def _uuid4(_context: ScriptContext) -> str:
    from ..services.ids import uuid4

    return uuid4()


@_in_place("time_parse", text="string (RFC 3339)", returns="Unix seconds")
def _time_parse(_context: ScriptContext, text: bytes) -> int | float:
    from ..services.dates import parse_rfc3339

    return parse_rfc3339(_argument(text, "text"))


@_request("sleep", seconds="number >= 0")
async def _sleep(_context: ScriptContext, seconds: float) -> None:
    await _until(time.monotonic() + seconds)


async def _until(moment: float) -> None:
    """Wait until ``time.monotonic()`` reaches ``moment``: the loop's timers may fire
    a little early (uvloop rounds to milliseconds), and a script must never find a
    sleep short."""
    while (remaining := moment - time.monotonic()) > 0:
        await asyncio.sleep(remaining)


@_request("store_put", key="string", value="any", is_global="boolean")
async def _store_put(context: ScriptContext, key: bytes, value: Any, is_global: bool) -> None:
    operation = "store.put_global" if is_global else "store.put"
    await context.services.store.put(
        operation,
        _argument(key, "key"),
        await _value(context, operation, value),
        namespace=None if is_global else context.ident,
        owner=context.ident,
    )


@_request("store_get", key="string", is_global="boolean", returns="value, timestamp")
async def _store_get(context: ScriptContext, key: bytes, is_global: bool) -> tuple[Any, Any]:
    operation = "store.get_global" if is_global else "store.get"
    return await context.services.store.get(
        operation, _argument(key, "key"), namespace=None if is_global else context.ident
    )


@_request("store_delete", key="string", is_global="boolean")
async def _store_delete(context: ScriptContext, key: bytes, is_global: bool) -> None:
    operation = "store.delete_global" if is_global else "store.delete"
    await context.services.store.delete(
        operation, _argument(key, "key"), namespace=None if is_global else context.ident
    )


@_request("cache_put", key="string", value="any", ttl="number")
async def _cache_put(context: ScriptContext, key: bytes, value: Any, ttl: Any) -> None:
    await context.services.cache.call(
        "put",
        _argument(key, "key"),
        context.owner,
        await _value(context, "cache.put", value),
        await _value(context, "cache.put", ttl),
    )


@_request(
    "cache_get",
    key="string",
    returns="value|nil (waits while another script's mark stands)",
)
async def _cache_get(context: ScriptContext, key: bytes) -> Any:
    return await context.services.cache.call("get", _argument(key, "key"), context.owner)


@_request("cache_delete", key="string")
async def _cache_delete(context: ScriptContext, key: bytes) -> None:
    await context.services.cache.call("delete", _argument(key, "key"), context.owner)


@_request("cache_mark_pending", key="string")
async def _cache_mark_pending(context: ScriptContext, key: bytes) -> None:
    await context.services.cache.call("mark_pending", _argument(key, "key"), context.owner)


@_request(
    "http_request",
    method="string",
    url="string",
    body="string|nil",
    headers="table|nil",
    options="table|nil",
    returns="{status, body, headers}",
)
async def _http_request(
    context: ScriptContext,
    method: bytes,
    url: bytes,
    body: bytes | None,
    headers: Any,
    options: Any,
) -> dict[str, Any]:
    headers_values = await _option_values(context, headers, "headers")
    option_values = await _option_values(context, options)
    with context.descriptor():
        response = await context.services.http.request(
            _argument(method, "method"),
            _argument(url, "url"),
            body,
            headers_values,
            option_values,
            defaults=context.options,
        )
    return {"status": response.status, "body": response.body, "headers": response.headers}


async def _value(context: ScriptContext, operation: str, value: Any) -> Any:
    try:
        # The value is the script's: converting it is work of the script, as a step.
        return await context.run_step(context.lua.convert.to_python, value)
    except ConversionError as exc:
        raise ScriptCallError(f"{operation}: {exc}") from None


async def _option_values(
    context: ScriptContext, table: Any, name: str = "options"
) -> dict[str, Any]:
    if table is None:
        return {}
    try:
        # The table is the script's: converting it is work of the script, as a step.
        values = await context.run_step(context.lua.convert.to_python, table)
    except ConversionError as exc:
        raise InvalidOption(name, str(exc)) from None
    if isinstance(values, list) and not values:
        return {}
    if not isinstance(values, dict):
        raise InvalidOption(name, "expected a table of name = value")
    return values


def _argument(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        if name == "url":
            raise InvalidURL(value.decode(errors="replace"), "not valid UTF-8") from None
        raise InvalidOption(name, "not valid UTF-8 text", kind="argument") from None


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
