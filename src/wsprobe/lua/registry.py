"""Everything a script can call that Python serves, registered in this one place.

Each :class:`Operation` has the name the prelude calls it by, its arguments as
Lua hands them over, and a handler taking the script's :class:`ScriptContext`
first. Operations run either *in place*, inside the Lua step (``host.NAME(...)``
in the prelude: quick, no I/O), or as a *request*: the script's coroutine yields
(``request("NAME", ...)``), the runner awaits the handler on the event loop and
resumes the script with its value or its error. A test checks that the names the
prelude uses are exactly the names registered here.

To give scripts something new: register its handler here, call it from the
prelude, and document it in the README's table of what a script sees.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Error, InvalidOption, InvalidURL
from ..options import Options, options_from_mapping
from . import jsoncodec
from .convert import ConversionError

if TYPE_CHECKING:
    from ..async_session import AsyncSession
    from ..models import Result
    from .runtime import LuaScript, Request, Step

__all__ = ["IN_PLACE", "REQUESTS", "Operation", "ScriptContext", "serve"]


class ScriptContext:
    """What the operations of one script share: its state, options, sessions and output."""

    def __init__(
        self,
        name: str,
        options: Options,
        *,
        write: Callable[[str], None],
        log: Callable[[str, str], None],
    ) -> None:
        self.name = name
        self.options = options
        self.write = write
        self.log = log
        self.script: LuaScript | None = None
        self.sessions: dict[int, AsyncSession] = {}
        self._next_session = 1

    @property
    def lua(self) -> LuaScript:
        """The script's Lua state (set once it is created)."""
        assert self.script is not None
        return self.script

    def add_session(self, session: AsyncSession) -> int:
        """Keep ``session`` for the script; return the id the prelude knows it by."""
        session_id, self._next_session = self._next_session, self._next_session + 1
        self.sessions[session_id] = session
        return session_id

    async def close_sessions(self) -> None:
        """Close what the script left open (whatever its outcome)."""
        sessions, self.sessions = self.sessions, {}
        for session in sessions.values():
            await session.close()


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing a script can call: ``handler(context, *lua_arguments)``."""

    name: str
    arguments: str
    handler: Callable[..., Any]


IN_PLACE: dict[str, Operation] = {}
"""Operations run inside the Lua step; they return a value or raise an Error."""

REQUESTS: dict[str, Operation] = {}
"""Operations the script yields for; their handlers are coroutines."""


def _in_place(name: str, arguments: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        IN_PLACE[name] = Operation(name, arguments, handler)
        return handler

    return register


def _request(
    name: str, arguments: str
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        REQUESTS[name] = Operation(name, arguments, handler)
        return handler

    return register


async def serve(context: ScriptContext, request: Request) -> Step:
    """Perform what the script asks for and resume it with the value or the error."""
    handler = REQUESTS[request.op].handler
    try:
        value = await handler(context, *request.args)
    except Error as exc:
        return context.lua.resume(False, exc)
    return context.lua.resume(True, value)


# --- in place: output, time, json ---


@_in_place("write", "text: string (a printed line, without its newline)")
def _write(context: ScriptContext, text: bytes) -> None:
    context.write(_text(text))


@_in_place("log", 'level: "debug"|"info"|"warn"|"error", text: string')
def _log(context: ScriptContext, level: bytes, text: bytes) -> None:
    context.log(_text(level), _text(text))


@_in_place("now", "() -> Unix time in seconds, a float")
def _now(_context: ScriptContext) -> float:
    return time.time()


@_in_place("json_encode", "value: any -> string")
def _json_encode(context: ScriptContext, value: Any) -> str:
    return jsoncodec.encode(context.lua.convert, value)


@_in_place("json_decode", "text: string -> any")
def _json_decode(context: ScriptContext, text: bytes) -> Any:
    return jsoncodec.decode(context.lua.convert, text)


# --- requests: ws ---


@_request("send_recv", "url: string, data: string, options: table|nil -> reply: string")
async def _send_recv(context: ScriptContext, url: bytes, data: bytes, options: Any) -> str:
    return (await _probe_call(context, url, data, options)).reply


@_request("probe", "url: string, data: string, options: table|nil -> facts: table")
async def _probe(context: ScriptContext, url: bytes, data: bytes, options: Any) -> dict[str, Any]:
    facts = (await _probe_call(context, url, data, options)).facts()
    expires = facts["cert_expires"]
    facts["cert_expires"] = expires.timestamp() if expires is not None else None
    facts["timings"] = {
        name: value for name, value in facts["timings"].items() if value is not None
    }
    # Absent facts are left out, so that a script sees nil rather than json.null.
    return {name: value for name, value in facts.items() if value is not None}


@_request("connect", "url: string, options: table|nil (plus binary) -> session id")
async def _connect(context: ScriptContext, url: bytes, options: Any) -> int:
    from ..async_session import open_session_async

    values = _option_values(context, options)
    binary = values.pop("binary", False)
    session = await open_session_async(
        _argument(url, "url"), options_from_mapping(values, context.options), binary=binary
    )
    return context.add_session(session)


@_in_place("session_fact", 'id, name: "close_code"|"close_reason"|"subprotocol" -> value|nil')
def _session_fact(context: ScriptContext, session_id: int, name: bytes) -> Any:
    session = context.sessions[session_id]
    if name == b"subprotocol":
        return session.subprotocol
    if session.close_code is None:  # nil until the server closed, as in ws.probe
        return None
    return session.close_code if name == b"close_code" else session.close_reason


@_request("session_send", 'id, data: string, kind: "text"|"binary"')
async def _session_send(context: ScriptContext, session_id: int, data: bytes, kind: bytes) -> None:
    session = context.sessions[session_id]
    if kind == b"binary":
        session.send_binary(data)
    else:
        session.send(_argument(data, "data"))


@_request("session_recv", 'id, timeout: number|nil -> data: string, kind: "text"|"binary"')
async def _session_recv(
    context: ScriptContext, session_id: int, timeout: float | None
) -> tuple[str | bytes, str]:
    payload = await context.sessions[session_id].recv(timeout)
    return payload, "binary" if isinstance(payload, bytes) else "text"


@_request("session_ping", "id, timeout: number|nil -> seconds")
async def _session_ping(context: ScriptContext, session_id: int, timeout: float | None) -> float:
    return await context.sessions[session_id].ping(timeout)


@_request("session_close", "id, code: number|nil, reason: string|nil")
async def _session_close(
    context: ScriptContext, session_id: int, code: Any, reason: bytes | None
) -> None:
    # Kept after closing: using it again says which connection is closed.
    await context.sessions[session_id].close(
        1000 if code is None else code, "" if reason is None else _argument(reason, "reason")
    )


async def _probe_call(context: ScriptContext, url: bytes, data: bytes, options: Any) -> Result:
    from ..client import probe_with_async

    values = _option_values(context, options)
    merged = options_from_mapping(values, context.options) if values else context.options
    return await probe_with_async(_argument(url, "url"), _argument(data, "data"), merged)


def _option_values(context: ScriptContext, table: Any) -> dict[str, Any]:
    if table is None:
        return {}
    try:
        values = context.lua.convert.to_python(table)
    except ConversionError as exc:
        raise InvalidOption("options", str(exc)) from None
    if isinstance(values, list) and not values:
        return {}
    if not isinstance(values, dict):
        raise InvalidOption("options", "expected a table of name = value")
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
