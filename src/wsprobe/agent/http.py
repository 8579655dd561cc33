"""The agent's HTTP interface (aiohttp): ``/metrics``, ``/probe``, the JSON API, the
badges, the status page ``/`` and a page per monitor ``/monitors/NAME``.

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
import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from ..errors import Error
from ..redaction import one_line
from ..url import parse_url, redact
from .badges import latency_badge, status_badge, uptime_badge
from .board import RECENT, Entry
from .config import Module, Monitor, PageSettings
from .metrics import AgentCollector, AgentFacts, exposition, joined, probe_exposition
from .outcome import Outcome, State
from .page import CSP, MonitorDetail, render_monitor, render_page
from .prober import Busy
from .uptime import WINDOWS, Incident, Window

__all__ = ["SCRAPE_TIMEOUT_OFFSET", "AgentView", "make_app"]

#: Seconds left to Prometheus under its scrape timeout, as blackbox_exporter does.
SCRAPE_TIMEOUT_OFFSET = 0.5
_RESULTS_LIMIT = 10_000
_INCIDENTS_LIMIT = 1000
#: Seconds a badge may be cached: a README's image is not a live view.
BADGE_MAX_AGE = 60
# The monitor page's chart: the results of this many seconds, at most this many.
_CHART_SECONDS = 86_400
_CHART_LIMIT = 1440
_PAGE_INCIDENTS = 20
# The status page's heartbeat bar: the last runs of each monitor.
_PAGE_BEATS = 30
_STATES = {state: state.name.lower() for state in State}


@dataclass(frozen=True, slots=True)
class AgentView:
    """What the HTTP interface needs of the agent, and nothing more.

    ``entries`` and ``entry`` read the board (each monitor, its recent results);
    ``results(name, since, limit)`` the history; ``module`` a ``/probe`` module by
    name; ``probe(module, target, timeout, log)`` runs one check now;
    ``snapshot`` the monitors' lines and the facts ``/metrics`` shows; ``shard`` is ``"I/N"`` when
    sharded; ``log`` takes the one line said of a request that failed unexpectedly.
    From the roll-ups: ``uptimes()`` every monitor's :data:`~.uptime.WINDOWS` (a
    monitor without runs may be missing), ``windows(name)`` one monitor's,
    ``incidents(name, limit)`` its incidents, newest first; ``page()`` the page's settings;
    ``alert(name)`` a monitor's ``alert`` (``state`` and ``since``, ``None`` when its
    alerts are off) and ``maintenance``.
    """

    entries: Callable[[], list[Entry]]
    entry: Callable[[str], Entry | None]
    results: Callable[[str, float, int], Awaitable[list[Outcome]]]
    module: Callable[[str], Module | None]
    probe: Callable[[str, str, float | None, Callable[[str], None] | None], Awaitable[Outcome]]
    snapshot: Callable[[], tuple[list[tuple[str, ...]], AgentFacts]]
    shard: Callable[[], str | None]
    log: Callable[[str], None]
    uptimes: Callable[[], Awaitable[Mapping[str, Mapping[str, Window]]]]
    windows: Callable[[str], Awaitable[Mapping[str, Window]]]
    incidents: Callable[[str, int], Awaitable[list[Incident]]]
    page: Callable[[], PageSettings]
    alert: Callable[[str], dict[str, Any]]


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
    app.router.add_get("/api/monitors/{name}/incidents", _incidents)
    app.router.add_get("/monitors/{name}", _monitor_page)
    app.router.add_get("/badges/{name}/status.svg", _status_badge)
    app.router.add_get("/badges/{name}/{kind:uptime|latency}/{window}.svg", _window_badge)
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
    except Error as exc:  # the history cannot be read now (its file, its disk)
        return web.Response(status=503, text=f"{_clip(str(exc), 1000)}\n")
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
    # The monitors' lines are made as results come: a scrape joins them on the loop in
    # a few milliseconds. On a thread it would wait for the GIL behind the checks at
    # each hand-off, for far longer than the join takes.
    rows, facts = _view(request).snapshot()
    own = CollectorRegistry(auto_describe=False)
    own.register(AgentCollector(facts))
    ProcessCollector(registry=own)
    accept = request.headers.get("Accept")
    if joined(accept):
        body, content_type = exposition(rows, own, accept)
    else:
        body, content_type = await asyncio.to_thread(exposition, rows, own, accept)
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
    if not debug:
        body, content_type = probe_exposition(outcome, request.headers.get("Accept"))
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
            probe_exposition(outcome, None)[0].decode(),
            "Module configuration:",
            f"timeout: {shown_timeout:g}s",
            f"prober: {probe.prober}",
        ]
    )
    return web.Response(text=text + "\n", content_type="text/plain")


async def _monitors(request: web.Request) -> web.Response:
    view = _view(request)
    recent = _recent(request.query.get("recent"))
    after = _since(request.query.get("after"), "after")
    monitors = await _monitors_json(view, recent, after)
    return web.json_response({"shard": view.shard(), "monitors": monitors})


async def _monitors_json(
    view: AgentView, recent: int = 0, after: float = 0.0
) -> list[dict[str, Any]]:
    uptimes = await view.uptimes()
    entries = view.entries()
    _SHAPES.keep(len(entries))
    return [
        _monitor_json(entry, uptimes.get(entry.monitor.name, {}), recent, after, alert=view.alert)
        for entry in entries
    ]


class _Shapes:
    """The JSON of what stays the same from one request to the next, made once: each
    monitor's definition and its last outcome (by identity: both are immutable)."""

    def __init__(self) -> None:
        self._definitions: dict[str, tuple[Monitor, dict[str, Any]]] = {}
        self._lasts: dict[str, tuple[Outcome, dict[str, Any]]] = {}

    def keep(self, monitors: int) -> None:
        # Monitors a reload removed are forgotten once they would double the memory.
        if len(self._definitions) > 2 * monitors + 100:
            self._definitions.clear()
            self._lasts.clear()

    def definition(self, monitor: Monitor) -> dict[str, Any]:
        found = self._definitions.get(monitor.name)
        if found is None or found[0] is not monitor:
            shown = {
                "name": monitor.name,
                "url": monitor.shown_url,
                "script": monitor.probe.script,
                "interval": monitor.interval,
                "labels": dict(monitor.labels),
            }
            found = self._definitions[monitor.name] = (monitor, shown)
        return found[1]

    def last(self, name: str, outcome: Outcome | None) -> dict[str, Any] | None:
        if outcome is None:
            return None
        found = self._lasts.get(name)
        if found is None or found[0] is not outcome:
            found = self._lasts[name] = (outcome, outcome.as_json())
        return found[1]


_SHAPES = _Shapes()
_NO_WINDOW = Window()


async def _monitor(request: web.Request) -> web.Response:
    view = _view(request)
    entry = _entry(request)
    shown = _monitor_json(entry, await view.windows(entry.monitor.name), RECENT, alert=view.alert)
    # Only here, not in the listing: a thousand monitors' lines would make it heavy.
    shown["output"] = [{"time": round(at, 6), "line": line} for at, line in entry.output]
    return web.json_response(shown)


def _monitor_json(
    entry: Entry,
    windows: Mapping[str, Window],
    recent: int,
    after: float = 0.0,
    *,
    alert: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    monitor = entry.monitor
    shown = _SHAPES.definition(monitor).copy()
    uptime, latency = {}, {}
    for name in WINDOWS:
        window = windows.get(name, _NO_WINDOW)
        uptime[name] = window.uptime
        mean = window.latency
        latency[name] = None if mean is None else round(mean, 6)
    shown["last"] = _SHAPES.last(monitor.name, entry.last)
    shown["counts"] = dict(entry.runs)
    shown["skipped"] = entry.skipped
    shown["uptime"] = uptime
    shown["latency"] = latency
    shown.update(alert(monitor.name))
    if recent:
        # The newest first, back to ``after``: a page that has the others asks only
        # for what is new.
        beats: list[dict[str, Any]] = []
        for outcome in reversed(entry.recent):
            if len(beats) == recent or outcome.time <= after:
                break
            beats.append(_beat(outcome))
        shown["recent"] = beats[::-1]
    return shown


def _window(windows: Mapping[str, Window], name: str) -> Window:
    return windows.get(name) or Window()


def _beat(outcome: Outcome) -> dict[str, Any]:
    # Not rounded: a thousand monitors' thirty runs are asked for every few seconds.
    return {
        "time": outcome.time,
        "status": _STATES[outcome.status],
        "duration": outcome.duration,
        "error": outcome.error,
    }


async def _incidents(request: web.Request) -> web.Response:
    view = _view(request)
    entry = _entry(request)
    limit = _limit(request.query.get("limit"), default=100, most=_INCIDENTS_LIMIT)
    found = await view.incidents(entry.monitor.name, limit)
    return web.json_response(
        {"monitor": entry.monitor.name, "incidents": [i.as_json() for i in found]}
    )


async def _status_badge(request: web.Request) -> web.Response:
    entry = _entry(request)
    label = request.query.get("label")
    last = entry.last
    svg = status_badge(
        None if last is None else last.status, **({"label": label} if label else {})
    )
    return _svg(request, svg)


async def _window_badge(request: web.Request) -> web.Response:
    view = _view(request)
    entry = _entry(request)
    window = request.match_info["window"]
    if window not in WINDOWS:
        raise web.HTTPNotFound(
            text=f'no window "{_clip(window)}": expected {", ".join(WINDOWS)}\n'
        )
    found = _window(await view.windows(entry.monitor.name), window)
    label = request.query.get("label") or None
    if request.match_info["kind"] == "uptime":
        svg = uptime_badge(found.uptime, window, label=label)
    else:
        svg = latency_badge(found.latency, window, label=label)
    return _svg(request, svg)


def _svg(request: web.Request, svg: str) -> web.Response:
    body = svg.encode()
    # The badge's own digest: a client that has it is told so without a body.
    tag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    headers = {
        "Cache-Control": f"max-age={BADGE_MAX_AGE}",
        "ETag": tag,
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    if tag in (request.headers.get("If-None-Match") or "").replace(" ", "").split(","):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="image/svg+xml", headers=headers)


def _entry(request: web.Request) -> Entry:
    name = request.match_info["name"]
    entry = _view(request).entry(name)
    if entry is None:
        raise web.HTTPNotFound(text=f'no monitor "{_clip(name)}"\n')
    return entry


async def _results(request: web.Request) -> web.Response:
    view = _view(request)
    name = _entry(request).monitor.name
    since = _since(request.query.get("since"), "since")
    limit = _limit(request.query.get("limit"), default=1000, most=_RESULTS_LIMIT)
    results = await view.results(name, since, limit)
    return web.json_response(
        {"monitor": name, "results": [outcome.as_json() for outcome in results]}
    )


async def _page(request: web.Request) -> web.Response:
    view = _view(request)
    entries = view.entries()
    monitors = await _monitors_json(view)
    beats = {entry.monitor.name: list(entry.recent)[-_PAGE_BEATS:] for entry in entries}
    page = render_page(
        monitors, beats, shard=view.shard(), settings=view.page(), shown=_PAGE_BEATS
    )
    return _html(page)


async def _monitor_page(request: web.Request) -> web.Response:
    view = _view(request)
    entry = _entry(request)
    name = entry.monitor.name
    now = time.time()
    windows = await view.windows(name)
    detail = MonitorDetail(
        monitor=_monitor_json(entry, windows, 0, alert=view.alert),
        recent=list(entry.recent),
        windows=windows,
        incidents=await view.incidents(name, _PAGE_INCIDENTS),
        results=await view.results(name, now - _CHART_SECONDS, _CHART_LIMIT),
        output=list(entry.output),
    )
    return _html(render_monitor(detail, now=now))


def _html(page: str) -> web.Response:
    response = web.Response(text=page, content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


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


def _since(text: str | None, name: str) -> float:
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
            f'invalid {name} "{_clip(text)}": expected Unix seconds or an ISO 8601 time'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _limit(text: str | None, *, default: int, most: int) -> int:
    if text is None:
        return default
    # The length first: int() refuses (ValueError) beyond 4,300 digits.
    digits = len(text) <= len(str(most)) and text.isascii() and text.isdigit()
    if not digits or not 1 <= int(text) <= most:
        raise _BadRequest(f'invalid limit "{_clip(text)}": expected 1 to {most}')
    return int(text)


def _recent(text: str | None) -> int:
    if text is None:
        return 0
    digits = len(text) <= len(str(RECENT)) and text.isascii() and text.isdigit()
    if not digits or not 0 <= int(text) <= RECENT:
        raise _BadRequest(f'invalid recent "{_clip(text)}": expected 0 to {RECENT}')
    return int(text)


def _clip(text: str, limit: int = 100) -> str:
    # A reason is one line: whatever the request carried, no newline gets through.
    shown = text.replace("\n", "\\n").replace("\r", "\\r")
    return shown if len(shown) <= limit else shown[:limit] + "…"
