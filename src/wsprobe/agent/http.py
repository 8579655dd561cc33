"""The agent's HTTP interface (aiohttp): ``/metrics``, ``/probe``, the JSON API and ``/``.

``/probe`` follows blackbox_exporter: ``target`` and ``module`` parameters, the
``X-Prometheus-Scrape-Timeout-Seconds`` header, ``debug=true`` for a readable log;
a request it cannot run is HTTP 400 with a one-line reason, a target the module does
not allow 403, a probe beyond the agent's or the module's ``concurrency`` 503. Every
refusal is one line; nothing a caller sends leaves a traceback in the log.

The handlers see the agent only through an :class:`AgentView`: what they read (the
board, the history, the metrics' snapshot) and the one thing they ask (a probe).
"""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from ..errors import Error
from ..redaction import one_line
from ..url import parse_url, redact
from .board import Entry
from .config import Module
from .metrics import AgentFacts, MonitorRow, ResultsCollector, probe_registry, render
from .outcome import Outcome
from .page import render_page
from .prober import Busy

__all__ = ["SCRAPE_TIMEOUT_OFFSET", "AgentView", "make_app"]

#: Seconds left to Prometheus under its scrape timeout, as blackbox_exporter does.
SCRAPE_TIMEOUT_OFFSET = 0.5
_RESULTS_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class AgentView:
    """What the HTTP interface needs of the agent, and nothing more.

    ``entries`` and ``entry`` read the board (each monitor, its recent results);
    ``results(name, since, limit)`` the history; ``module`` a ``/probe`` module by
    name; ``probe(module, target, timeout, log)`` runs one check now;
    ``snapshot`` the rows and facts ``/metrics`` shows; ``shard`` is ``"I/N"`` when
    sharded; ``log`` takes the one line said of a request that failed unexpectedly.
    """

    entries: Callable[[], list[Entry]]
    entry: Callable[[str], Entry | None]
    results: Callable[[str, float, int], Awaitable[list[Outcome]]]
    module: Callable[[str], Module | None]
    probe: Callable[[str, str, float | None, Callable[[str], None] | None], Awaitable[Outcome]]
    snapshot: Callable[[], tuple[list[MonitorRow], AgentFacts]]
    shard: Callable[[], str | None]
    log: Callable[[str], None]


_VIEW = web.AppKey("agent", AgentView)


class _BadRequest(Exception):
    """A request the agent cannot serve; the text is the one-line reason."""


class _Forbidden(_BadRequest):
    """A request the configuration does not allow."""


def make_app(view: AgentView) -> web.Application:
    """The application serving the agent seen through ``view``."""
    app = web.Application(middlewares=[_bad_requests])
    app[_VIEW] = view
    app.router.add_get("/", _page)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/probe", _probe)
    app.router.add_get("/api/monitors", _monitors)
    app.router.add_get("/api/monitors/{name}", _monitor)
    app.router.add_get("/api/monitors/{name}/results", _results)
    return app


@web.middleware
async def _bad_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except _Forbidden as exc:
        return web.Response(status=403, text=f"{exc}\n")
    except _BadRequest as exc:
        return web.Response(status=400, text=f"{exc}\n")
    except Busy as exc:
        return web.Response(status=503, text=f"{exc}\n", headers={"Retry-After": "1"})
    except web.HTTPException:
        raise
    except Exception as exc:  # a bug of ours: one line in the log, one line to the caller
        text = one_line(f"internal error: {type(exc).__name__}: {exc}")[:500]
        _view(request).log(f"{request.method} {one_line(request.path)[:200]}: {text}")
        return web.Response(status=500, text=f"{text}\n")
    return response


def _view(request: web.Request) -> AgentView:
    return request.app[_VIEW]


async def _metrics(request: web.Request) -> web.Response:
    # A snapshot taken on the loop, encoded on a thread: with a thousand monitors the
    # encoding takes ~0.1 s, which the checks due meanwhile must not wait for.
    rows, facts = _view(request).snapshot()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResultsCollector(lambda: rows, facts=lambda: facts))
    ProcessCollector(registry=registry)
    body, content_type = await asyncio.to_thread(render, registry, request.headers.get("Accept"))
    return _exposition(body, content_type)


async def _probe(request: web.Request) -> web.Response:
    view = _view(request)
    query = request.query
    target = query.get("target")
    name = query.get("module")
    if not target:
        raise _BadRequest("missing parameter target")
    if not name:
        raise _BadRequest("missing parameter module")
    module = view.module(name)
    if module is None:
        raise _BadRequest(f'unknown module "{_clip(name)}"')
    probe = module.probe
    if probe.script is None:
        try:
            parse_url(target)
        except Error as exc:
            raise _BadRequest(str(exc)) from None
    elif any(ord(char) < 32 or ord(char) == 127 for char in target) or len(target) > 4096:
        raise _BadRequest("invalid target: control characters, or longer than 4096")
    if not module.allows(target):
        raise _Forbidden(f'target not allowed by module "{_clip(name)}" (its targets)')
    timeout = _scrape_timeout(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
    debug = query.get("debug", "").lower() == "true"
    lines: list[str] = []
    started = time.monotonic()

    def log(line: str) -> None:
        lines.append(f"+{time.monotonic() - started:.6f}s {line}")

    outcome = await view.probe(name, target, timeout, log if debug else None)
    registry = probe_registry(outcome)
    if not debug:
        body, content_type = render(registry, request.headers.get("Accept"))
        return _exposition(body, content_type)
    shown_timeout = probe.timeout if timeout is None else min(timeout, probe.timeout)
    # What the module sends (its message, its headers) is the configuration's, not
    # the caller's: the caller sees its kind, never its content.
    text = "\n".join(
        [
            f"Logs for the probe of {redact(target, probe.secret_words)} with module {name}:",
            *lines,
            f"Probe {'succeeded' if outcome.success else 'failed'}: "
            f"{outcome.status.name}{f' - {outcome.error}' if outcome.error else ''}",
            "",
            "Metrics that would have been returned:",
            generate_latest(registry).decode(),
            "Module configuration:",
            f"timeout: {shown_timeout:g}s",
            f"prober: {probe.prober}",
        ]
    )
    return web.Response(text=text + "\n", content_type="text/plain")


async def _monitors(request: web.Request) -> web.Response:
    view = _view(request)
    monitors = [_monitor_json(entry) for entry in view.entries()]
    return web.json_response({"shard": view.shard(), "monitors": monitors})


async def _monitor(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    entry = _view(request).entry(name)
    if entry is None:
        return web.Response(status=404, text=f'no monitor "{_clip(name)}"\n')
    shown = _monitor_json(entry)
    # Only here, not in the listing: a thousand monitors' lines would make it heavy.
    shown["output"] = [{"time": round(at, 6), "line": line} for at, line in entry.output]
    return web.json_response(shown)


def _monitor_json(entry: Entry) -> dict[str, Any]:
    monitor = entry.monitor
    return {
        "name": monitor.name,
        "url": monitor.shown_url,
        "script": monitor.probe.script,
        "interval": monitor.interval,
        "labels": dict(monitor.labels),
        "last": entry.last.as_json() if entry.last is not None else None,
        "counts": dict(entry.runs),
        "skipped": entry.skipped,
    }


async def _results(request: web.Request) -> web.Response:
    view = _view(request)
    name = request.match_info["name"]
    if view.entry(name) is None:
        return web.Response(status=404, text=f'no monitor "{_clip(name)}"\n')
    since = _since(request.query.get("since"))
    limit = _limit(request.query.get("limit"))
    try:
        results = await view.results(name, since, limit)
    except Error as exc:
        return web.Response(status=503, text=f"{_clip(str(exc), 1000)}\n")
    return web.json_response(
        {"monitor": name, "results": [outcome.as_json() for outcome in results]}
    )


async def _page(request: web.Request) -> web.Response:
    view = _view(request)
    page = render_page(view.entries(), shard=view.shard())
    return web.Response(text=page, content_type="text/html")


def _exposition(body: bytes, content_type: str) -> web.Response:
    response = web.Response(body=body)
    # aiohttp refuses a charset inside content_type=; the header is set as a whole.
    response.headers["Content-Type"] = content_type
    return response


def _scrape_timeout(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise _BadRequest(
            f'invalid X-Prometheus-Scrape-Timeout-Seconds "{_clip(header)}": '
            "expected a positive number"
        )
    # Leave Prometheus time to receive the answer; a tiny budget is halved instead.
    if seconds > 2 * SCRAPE_TIMEOUT_OFFSET:
        return seconds - SCRAPE_TIMEOUT_OFFSET
    return seconds / 2


def _since(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _BadRequest(
            f'invalid since "{_clip(text)}": expected Unix seconds or an ISO 8601 time'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _limit(text: str | None) -> int:
    if text is None:
        return 1000
    # The length first: int() refuses (ValueError) beyond 4,300 digits.
    digits = len(text) <= len(str(_RESULTS_LIMIT)) and text.isascii() and text.isdigit()
    if not digits or not 1 <= int(text) <= _RESULTS_LIMIT:
        raise _BadRequest(f'invalid limit "{_clip(text)}": expected 1 to {_RESULTS_LIMIT}')
    return int(text)


def _clip(text: str, limit: int = 100) -> str:
    # A reason is one line: whatever the request carried, no newline gets through.
    shown = text.replace("\n", "\\n").replace("\r", "\\r")
    return shown if len(shown) <= limit else shown[:limit] + "…"
