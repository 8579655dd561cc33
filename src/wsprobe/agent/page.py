"""The status page: one self-contained HTML document (no external assets; the agent
runs offline), readable on a phone, with an inline SVG latency chart per monitor, its
alert and whether a maintenance window covers it. Each monitor's card is the page's
``#NAME``: the link notifications carry."""

from __future__ import annotations

import datetime
import html
import time
from collections.abc import Callable, Sequence
from typing import Any

from .board import Entry
from .outcome import Outcome, State

__all__ = ["render_page"]

_CHART_WIDTH = 300
_CHART_HEIGHT = 48

_STYLE = """
:root{--ok:#1a7f37;--warning:#b35900;--critical:#c62828;--unknown:#6e7781;--none:#8c959f;
--bg:#f6f8fa;--card:#fff;--text:#1f2328;--muted:#59636e;--line:#d0d7de}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--text:#e6edf3;
--muted:#9198a1;--line:#30363d}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--text)}
header{padding:16px;border-bottom:1px solid var(--line);background:var(--card)}
h1{margin:0 0 6px;font-size:20px}
.summary{display:flex;flex-wrap:wrap;gap:8px;color:var(--muted)}
main{display:grid;gap:12px;padding:12px;grid-template-columns:repeat(auto-fill,minmax(290px,1fr))}
.monitor{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--none);
border-radius:8px;padding:12px;min-width:0}
.monitor.ok{border-left-color:var(--ok)}.monitor.warning{border-left-color:var(--warning)}
.monitor.critical{border-left-color:var(--critical)}.monitor.unknown{border-left-color:var(--unknown)}
.top{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
h2{margin:0;font-size:16px;overflow-wrap:anywhere}
.state{font-weight:700;font-size:13px;text-transform:uppercase;white-space:nowrap}
.ok .state{color:var(--ok)}.warning .state{color:var(--warning)}
.critical .state{color:var(--critical)}.unknown .state,.none .state{color:var(--unknown)}
.target,.facts{color:var(--muted);font-size:13px;overflow-wrap:anywhere;margin:2px 0}
.detail{margin:6px 0;overflow-wrap:anywhere}
.error{color:var(--critical)}.warning .error{color:var(--warning)}
.alert.firing{color:var(--critical);font-weight:700}.alert.pending{color:var(--warning)}
.maintenance{color:var(--muted);font-style:italic}
svg{display:block;width:100%;height:auto;margin-top:6px}
svg .line{fill:none;stroke:var(--muted);stroke-width:1.5}
svg .bad{fill:var(--critical)}svg .warn{fill:var(--warning)}
footer{padding:12px 16px;color:var(--muted);font-size:13px}
"""

# Turns Unix times into "12 s ago" and keeps them current; the page is whole without it.
_SCRIPT = """
(function(){
  function ago(s){s=Math.max(0,Math.round(s));if(s<60)return s+" s ago";
    if(s<3600)return Math.round(s/60)+" min ago";return Math.round(s/3600)+" h ago";}
  function tick(){var now=Date.now()/1000;
    document.querySelectorAll("[data-ts]").forEach(function(e){
      e.textContent=ago(now-parseFloat(e.getAttribute("data-ts")));});}
  tick();setInterval(tick,1000);document.body.setAttribute("data-ready","1");
})();
"""


def render_page(
    entries: Sequence[Entry],
    *,
    shard: str | None,
    alert: Callable[[str], dict[str, Any]] | None = None,
    now: float | None = None,
) -> str:
    """The page for ``entries``, each with a chart of its recent outcomes and, with
    ``alert`` (a monitor's name to its ``alert`` and ``maintenance``, as the API
    shows them), its alert."""
    now = time.time() if now is None else now
    counts = {state: 0 for state in State}
    waiting = 0
    for entry in entries:
        if entry.last is None:
            waiting += 1
        else:
            counts[entry.last.status] += 1
    summary = [f"<span>{len(entries)} monitors</span>"]
    summary += [
        f'<span class="count-{state.name.lower()}">{counts[state]} {state.name.lower()}</span>'
        for state in State
        if counts[state]
    ]
    if waiting:
        summary.append(f"<span>{waiting} waiting for a first run</span>")
    if shard:
        summary.append(f"<span>shard {_e(shard)}</span>")
    cards = "\n".join(
        _card(entry, now, alert(entry.monitor.name) if alert is not None else None)
        for entry in entries
    )
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>wsprobe agent</title>"
        f"<style>{_STYLE}</style></head><body>"
        f'<header><h1>wsprobe agent</h1><div class="summary">{"".join(summary)}</div></header>'
        f"<main>{cards or '<p>No monitors configured.</p>'}</main>"
        f'<footer>Rendered {stamp}. <a href="/metrics">metrics</a> · '
        '<a href="/api/monitors">JSON</a></footer>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def _card(entry: Entry, now: float, status: dict[str, Any] | None) -> str:
    monitor, last = entry.monitor, entry.last
    state = last.status.name.lower() if last is not None else "none"
    shown_state = state if last is not None else "waiting"
    target = monitor.shown_url or f"script {monitor.probe.script}"
    name = _e(monitor.name)
    lines = [
        f'<article class="monitor {state}" id="{name}" data-monitor="{name}">',
        f'<div class="top"><h2>{_e(monitor.name)}</h2>'
        f'<span class="state">{shown_state}</span></div>',
        f'<p class="target">{_e(target)}</p>',
    ]
    if last is not None:
        if last.error is not None:
            lines.append(f'<p class="detail error">{_e(last.error)}</p>')
        elif last.value is not None:
            lines.append(f'<p class="detail value">value {_e(str(last.value))}</p>')
        else:
            lines.append(f'<p class="detail">reply in {last.duration * 1000:.1f} ms</p>')
        facts = [f'last run <span data-ts="{last.time:.3f}">{_age(now - last.time)}</span>']
        if last.cert_expires is not None:
            days = (last.cert_expires - now) / 86400
            facts.append(f"certificate expires in {days:.0f} days")
        lines.append(f'<p class="facts">{" · ".join(facts)}</p>')
    if entry.skipped:
        lines.append(f'<p class="facts">{entry.skipped} runs skipped (previous still going)</p>')
    if status is not None:
        lines += _alert(status, now)
    lines.append(_chart(monitor.name, list(entry.recent)))
    lines.append("</article>")
    return "".join(lines)


def _alert(status: dict[str, Any], now: float) -> list[str]:
    lines = []
    alert = status["alert"]
    if alert is not None:
        phase = _e(alert["state"])
        since = alert["since"]
        when = (
            f' since <span data-ts="{since:.3f}">{_age(now - since)}</span>'
            if since is not None and phase != "ok"
            else ""
        )
        lines.append(
            f'<p class="facts alert {phase}" data-alert="{phase}">alert {phase}{when}</p>'
        )
    if status["maintenance"]:
        lines.append(
            '<p class="facts maintenance" data-maintenance="true">'
            "maintenance: notifications held back</p>"
        )
    return lines


def _chart(name: str, recent: Sequence[Outcome]) -> str:
    if len(recent) < 2:
        return ""
    top = max(outcome.duration for outcome in recent) or 1.0
    step = _CHART_WIDTH / (len(recent) - 1)
    points = []
    marks = []
    for index, outcome in enumerate(recent):
        x = index * step
        y = _CHART_HEIGHT - 2 - (outcome.duration / top) * (_CHART_HEIGHT - 4)
        points.append(f"{x:.1f},{y:.1f}")
        if outcome.status in (State.CRITICAL, State.UNKNOWN):
            marks.append(f'<circle class="bad" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>')
        elif outcome.status is State.WARNING:
            marks.append(f'<circle class="warn" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>')
    label = (
        f"latency of {name}: last {len(recent)} runs, "
        f"up to {top * 1000:.1f} ms, latest {recent[-1].duration * 1000:.1f} ms"
    )
    return (
        f'<svg class="chart" viewBox="0 0 {_CHART_WIDTH} {_CHART_HEIGHT}" role="img" '
        f'aria-label="{_e(label)}" data-points="{len(recent)}"><title>{_e(label)}</title>'
        f'<polyline class="line" points="{" ".join(points)}"/>{"".join(marks)}</svg>'
        f'<p class="facts">latency, last {len(recent)} runs (max {top * 1000:.1f} ms)</p>'
    )


def _age(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{round(seconds / 60)} min ago"
    return f"{round(seconds / 3600)} h ago"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
