"""The agent's pages: the status page ``/`` and a page per monitor ``/monitors/NAME``.

Each is one self-contained HTML document (no external assets: the agent runs offline),
readable on a phone and in dark mode. The status page shows every monitor with its
uptime, a heartbeat bar of its last runs, its latency, certificate, alert and
maintenance, grouped by a label of the operator's choice; its one script fetches
``/api/monitors`` every ``page.refresh`` and updates the cards in place. A monitor's page
adds a latency chart with axes (SVG drawn here), the uptime table, the incidents, the
last results and, for a script, the last lines it wrote.

The pages read monitors in the API's shape (``/api/monitors``'s entries), so a field the
API gains (``alert``, ``maintenance``) reaches both. Everything shown is escaped; the
script and the style are constants, allowed by their hashes in :data:`CSP`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .badges import format_latency, format_uptime
from .config import PageSettings
from .outcome import Outcome, State
from .uptime import WINDOWS, Incident, Window

__all__ = ["CSP", "MonitorDetail", "render_monitor", "render_page"]

_STYLE = """
:root{--ok:#1a7f37;--warning:#b35900;--critical:#c62828;--unknown:#6e7781;--none:#afb8c1;
--bg:#f6f8fa;--card:#fff;--text:#1f2328;--muted:#59636e;--line:#d0d7de;--link:#0969da}
@media (prefers-color-scheme:dark){:root{--ok:#3fb950;--warning:#d29922;--critical:#f85149;
--unknown:#8b949e;--none:#484f58;--bg:#0d1117;--card:#161b22;--text:#e6edf3;--muted:#9198a1;
--line:#30363d;--link:#4493f8}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--text)}
a{color:var(--link)}
header{padding:14px 16px;border-bottom:1px solid var(--line);background:var(--card)}
h1{margin:0 0 4px;font-size:20px}
.summary{display:flex;flex-wrap:wrap;gap:4px 12px;color:var(--muted);font-size:14px}
.summary .count-ok{color:var(--ok)}.summary .count-warning{color:var(--warning)}
.summary .count-critical{color:var(--critical)}.summary .count-unknown{color:var(--unknown)}
main{padding:4px 12px 12px;max-width:1400px;margin:0 auto}
.group>h2{font-size:15px;color:var(--muted);margin:14px 4px 8px;font-weight:600}
.cards{display:grid;gap:12px;grid-template-columns:repeat(auto-fill,minmax(300px,1fr))}
.monitor{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--none);
border-radius:8px;padding:12px;min-width:0}
.monitor.ok{border-left-color:var(--ok)}.monitor.warning{border-left-color:var(--warning)}
.monitor.critical{border-left-color:var(--critical)}
.monitor.unknown{border-left-color:var(--unknown)}
.top{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
h3{margin:0;font-size:16px;overflow-wrap:anywhere}h3 a{color:inherit;text-decoration:none}
h3 a:hover{text-decoration:underline}
.state{font-weight:700;font-size:13px;text-transform:uppercase;white-space:nowrap}
.ok .state,.state.ok{color:var(--ok)}.warning .state,.state.warning{color:var(--warning)}
.critical .state,.state.critical{color:var(--critical)}
.unknown .state,.none .state,.state.unknown{color:var(--unknown)}
.target,.facts{color:var(--muted);font-size:13px;overflow-wrap:anywhere;margin:2px 0}
.detail{margin:6px 0;overflow-wrap:anywhere}
.error{color:var(--critical)}.warning .error{color:var(--warning)}
.uptime{display:grid;grid-template-columns:repeat(4,1fr);gap:4px;margin:8px 0;padding:0}
.uptime div{text-align:center;border:1px solid var(--line);border-radius:6px;padding:2px}
.uptime dt{font-size:11px;color:var(--muted)}.uptime dd{margin:0;font-weight:600;font-size:14px}
.beats{display:flex;gap:2px;height:26px;margin:8px 0 2px}
.beat{flex:1 1 0;min-width:3px;max-width:12px;border-radius:2px;background:var(--none);
cursor:pointer}
.beat.ok{background:var(--ok)}.beat.warning{background:var(--warning)}
.beat.critical{background:var(--critical)}.beat.unknown{background:var(--unknown)}
.beat:hover,.beat.picked{outline:2px solid var(--text);outline-offset:1px}
.beat-info{font-size:12px;color:var(--muted);margin:2px 0;overflow-wrap:anywhere}
.alert.firing{color:var(--critical);font-weight:700}.alert.pending{color:var(--warning)}
.maintenance{font-style:italic}
footer{padding:12px 16px;color:var(--muted);font-size:13px}
.back{font-size:14px}
section.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:12px;margin:12px 0;min-width:0}
section.panel h2{font-size:16px;margin:0 0 8px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}td.num{text-align:right;white-space:nowrap}
td.when{white-space:nowrap}td.text{overflow-wrap:anywhere;min-width:12em}
pre.output{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px}
svg.chart{display:block;width:100%;height:auto}
.chart .axis{stroke:var(--muted);stroke-width:1}.chart .grid{stroke:var(--line);stroke-width:1}
.chart text{fill:var(--muted);font-size:11px;font-family:system-ui,sans-serif}
.chart .line{fill:none;stroke:var(--link);stroke-width:1.5}
.chart .critical,.chart .unknown{fill:var(--critical)}.chart .warning{fill:var(--warning)}
table.narrow{width:auto;min-width:60%}
@media (max-width:520px){main{padding:4px 6px 8px}.cards{grid-template-columns:1fr}
th,td{padding:3px 4px}svg.chart{min-width:640px}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block}
table.stack thead{display:none}table.stack tr{border-bottom:1px solid var(--line);padding:4px 0}
table.stack td{display:inline-block;border:0;padding:1px 6px 1px 0}
table.stack td.text{display:block;min-width:0}}
"""

# Keeps the cards current from /api/monitors without reloading the page, turns Unix
# times into "12 s ago", and shows a heartbeat's details on tap (title shows on hover).
# Rendered text goes through textContent only. The pages are whole without it.
_SCRIPT = """
(function(){
"use strict";
var body=document.body,WINDOWS=["1h","24h","7d","30d"];
// Only the runs after the newest on the page are asked for, and added to the bars.
var shown=parseInt(body.getAttribute("data-beats")||"0",10);
var newest=parseFloat(body.getAttribute("data-newest")||"0");
function ago(s){s=Math.max(0,Math.round(s));if(s<120)return s+" s ago";
  if(s<7200)return Math.floor(s/60)+" min ago";
  if(s<172800)return (s/3600).toFixed(1)+" h ago";return (s/86400).toFixed(1)+" d ago";}
function tick(){var now=Date.now()/1000;
  document.querySelectorAll("[data-ts]").forEach(function(e){
    e.textContent=ago(now-parseFloat(e.getAttribute("data-ts")));});}
function utc(t){return new Date(t*1000).toISOString().slice(0,19).replace("T"," ")+" UTC";}
function pct(u){if(u===null||u===undefined)return "\\u2013";if(u>=1)return "100%";
  return (Math.floor(Math.round(Math.max(u,0)*1e6)/100)/100).toFixed(2)+"%";}
function ms(s){if(s>=1)return s.toFixed(2)+" s";var m=s*1000;
  return m>=10?m.toFixed(0)+" ms":m.toFixed(1)+" ms";}
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
  if(text!==undefined)e.textContent=text;return e;}
function beatTitle(b){return utc(b.time)+" \\u00b7 "+b.status+" \\u00b7 "+ms(b.duration)+
  (b.error?" \\u00b7 "+b.error:"");}
function part(card,name){return card.querySelector("[data-f='"+name+"']");}
function update(card,m){
  var last=m.last,state=last?last.status:"none";
  card.className="monitor "+state;
  part(card,"state").textContent=last?state:"waiting";
  WINDOWS.forEach(function(w){var d=card.querySelector("[data-w='"+w+"']");
    if(d)d.textContent=pct(m.uptime[w]);});
  var bar=part(card,"beats"),had=parseFloat(bar.getAttribute("data-last")||"0");
  m.recent.forEach(function(b){if(b.time<=had)return;var s=el("b","beat "+b.status);
    s.title=beatTitle(b);bar.appendChild(s);bar.setAttribute("data-last",b.time);
    newest=Math.max(newest,b.time);});
  while(bar.children.length>shown)bar.removeChild(bar.firstChild);
  var detail=part(card,"detail");
  if(!last){detail.textContent="waiting for a first run";detail.className="detail";}
  else if(last.error!==null){detail.textContent=last.error;detail.className="detail error";}
  else if(last.value!==null){detail.textContent="value "+last.value;detail.className="detail";}
  else{detail.textContent="reply in "+ms(last.duration);detail.className="detail";}
  var facts=part(card,"facts");facts.replaceChildren();
  if(last){facts.appendChild(document.createTextNode("last run "));
    var t=el("span","",ago(Date.now()/1000-last.time));t.setAttribute("data-ts",last.time);
    facts.appendChild(t);
    if(m.latency["24h"]!==null)facts.appendChild(document.createTextNode(
      " \\u00b7 24h mean "+ms(m.latency["24h"])));
    if(last.cert_expires!==null)facts.appendChild(document.createTextNode(
      " \\u00b7 certificate expires in "+Math.round((last.cert_expires-Date.now()/1000)/86400)+
      " days"));}
  var alert=part(card,"alert");
  if(alert){var a=m.alert;alert.hidden=!a;
    if(a){alert.className="facts alert "+a.state;alert.setAttribute("data-alert",a.state);
      alert.textContent="alert "+a.state+(a.since!==null&&a.state!=="ok"?
        " since "+utc(a.since):"");}}
  var maint=part(card,"maintenance");if(maint){maint.hidden=!m.maintenance;
    maint.setAttribute("data-maintenance",m.maintenance?"true":"false");}
}
function summary(ms_){var s=document.getElementById("summary");if(!s)return;
  var counts={},waiting=0;ms_.forEach(function(m){if(m.last)counts[m.last.status]=
    (counts[m.last.status]||0)+1;else waiting++;});
  s.replaceChildren(el("span","",ms_.length+" monitors"));
  ["ok","warning","critical","unknown"].forEach(function(k){if(counts[k])
    s.appendChild(el("span","count-"+k,counts[k]+" "+k));});
  if(waiting)s.appendChild(el("span","",waiting+" waiting for a first run"));}
function refresh(){
  // A run is shown once it ended, under the time it started: those that started up
  // to a minute before the newest shown may be new.
  fetch("/api/monitors?recent="+shown+"&after="+(newest-60),{cache:"no-store"})
  .then(function(r){if(!r.ok)throw new Error(r.status);return r.json();})
  .then(function(data){
    var cards={};document.querySelectorAll("article[data-monitor]").forEach(function(c){
      cards[c.getAttribute("data-monitor")]=c;});
    var same=data.monitors.length===Object.keys(cards).length&&
      data.monitors.every(function(m){return cards.hasOwnProperty(m.name);});
    if(!same){location.reload();return;}
    data.monitors.forEach(function(m){update(cards[m.name],m);});
    summary(data.monitors);
    var u=document.getElementById("updated");if(u){u.setAttribute("data-ts",Date.now()/1000);}
    body.setAttribute("data-refreshed",String(1+parseInt(body.getAttribute("data-refreshed")
      ||"0",10)));tick();
  }).catch(function(){var u=document.getElementById("stale");if(u)u.hidden=false;});
}
document.addEventListener("click",function(ev){var b=ev.target;
  if(!(b instanceof Element)||!b.classList.contains("beat"))return;
  var card=b.closest("[data-monitor]"),info=card&&card.querySelector(".beat-info");
  document.querySelectorAll(".beat.picked").forEach(function(p){p.classList.remove("picked");});
  b.classList.add("picked");if(info){info.textContent=b.title;info.hidden=false;}});
tick();setInterval(tick,1000);
var every=parseFloat(body.getAttribute("data-refresh")||"0");
if(every>0)setInterval(refresh,every*1000);
body.setAttribute("data-ready","1");
})();
"""


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The pages' Content-Security-Policy: nothing from elsewhere, only their own style and
#: script (by hash), requests only to the agent.
CSP = (
    f"default-src 'none'; style-src {_digest(_STYLE)}; script-src {_digest(_SCRIPT)}; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_CHART_WIDTH = 720
_CHART_HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 12, 10, 26
# Spacing of the time axis' marks, in seconds: the first giving at most 8 marks.
_TIME_STEPS = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_LAST_RESULTS = 20
# A heartbeat's markup never changes: each is made once (the cache is emptied when full).
_BEATS: dict[tuple[float, State, float, str | None], str] = {}
_BEATS_KEPT = 200_000
# And a bar, under its last run's id (the run itself kept in it, so the id is not reused).
_BARS: dict[int, tuple[Outcome, Outcome, int, str]] = {}


@dataclass(frozen=True, slots=True)
class MonitorDetail:
    """What a monitor's page shows: the monitor in the API's shape, its windows, its
    incidents (newest first), its results (oldest first) and its script's last lines."""

    monitor: Mapping[str, Any]
    recent: Sequence[Outcome]
    windows: Mapping[str, Window]
    incidents: Sequence[Incident]
    results: Sequence[Outcome]
    output: Sequence[tuple[float, str]]


def render_page(
    monitors: Sequence[Mapping[str, Any]],
    beats: Mapping[str, Sequence[Outcome]],
    *,
    shard: str | None,
    settings: PageSettings,
    shown: int,
    now: float | None = None,
) -> str:
    """The status page for ``monitors`` (the API's shape) with the heartbeats of each
    (``beats``, by name, oldest first), grouped by ``settings.group_by``; on refresh the
    page asks for the last ``shown`` runs of each."""
    now = time.time() if now is None else now
    groups: dict[str | None, list[str]] = {}
    key = settings.group_by
    for monitor in monitors:
        value = monitor["labels"].get(key) if key is not None else None
        groups.setdefault(value, []).append(_card(monitor, beats.get(monitor["name"], ()), now))
    sections = []
    # Named groups in order of their value, the monitors without the label last.
    for value in sorted(groups, key=lambda v: (v is None, v or "")):
        if key is None:
            heading = ""
        elif value is None:
            heading = f"<h2>no {_e(key)}</h2>"
        else:
            heading = f"<h2>{_e(key)}: {_e(value)}</h2>"
        sections.append(
            f'<section class="group"{_data("group", value or "")}>{heading}'
            f'<div class="cards">{"".join(groups[value])}</div></section>'
        )
    extra = f"<span>shard {_e(shard)}</span>" if shard else ""
    updated = (
        f'<span>updated <span id="updated" data-ts="{now:.3f}">0 s ago</span>'
        '<span id="stale" hidden> (the agent does not answer)</span></span>'
    )
    return _document(
        "wsprobe agent",
        f'<header><h1>wsprobe agent</h1><div class="summary" id="summary">'
        f"{_summary(monitors)}</div>"
        f'<div class="summary">{updated}{extra}</div></header>'
        f"<main>{''.join(sections) or '<p>No monitors configured.</p>'}</main>"
        '<footer><a href="/metrics">metrics</a> · <a href="/api/monitors">JSON</a></footer>',
        refresh=settings.refresh,
        beats=shown,
        newest=max((bar[-1].time for bar in beats.values() if bar), default=0.0),
    )


def _summary(monitors: Sequence[Mapping[str, Any]]) -> str:
    counts = {state.name.lower(): 0 for state in State}
    waiting = 0
    for monitor in monitors:
        last = monitor["last"]
        if last is None:
            waiting += 1
        else:
            counts[last["status"]] += 1
    parts = [f"<span>{len(monitors)} monitors</span>"]
    parts += [f'<span class="count-{k}">{n} {k}</span>' for k, n in counts.items() if n]
    if waiting:
        parts.append(f"<span>{waiting} waiting for a first run</span>")
    return "".join(parts)


def _card(monitor: Mapping[str, Any], beats: Sequence[Outcome], now: float) -> str:
    name = monitor["name"]
    last = monitor["last"]
    state = last["status"] if last is not None else "none"
    # The card is the page's #NAME: notifications link to page_url#NAME.
    lines = [
        f'<article class="monitor {state}" id="{_e(name)}"{_data("monitor", name)}>',
        f'<div class="top"><h3><a href="/monitors/{_e(name)}">{_e(name)}</a></h3>'
        f'<span class="state" data-f="state">{state if last is not None else "waiting"}</span>'
        "</div>",
        f'<p class="target">{_e(_target(monitor))}</p>',
        _uptime_cells(monitor["uptime"]),
        _bar(beats),
        '<p class="beat-info" aria-live="polite" hidden></p>',
        _detail(last),
        f'<p class="facts" data-f="facts">{_facts(monitor, now)}</p>',
    ]
    if "alert" in monitor:
        lines.append(_alert(monitor["alert"], now))
    if "maintenance" in monitor:
        held = "true" if monitor["maintenance"] else "false"
        hidden = "" if monitor["maintenance"] else " hidden"
        lines.append(
            f'<p class="facts maintenance" data-f="maintenance" data-maintenance="{held}"{hidden}>'
            "in maintenance: notifications held back</p>"
        )
    if monitor["skipped"]:
        lines.append(
            f'<p class="facts">{monitor["skipped"]} runs skipped (previous still going)</p>'
        )
    lines.append("</article>")
    return "".join(lines)


def _target(monitor: Mapping[str, Any]) -> str:
    return monitor["url"] or f"script {monitor['script']}"


def _uptime_cells(uptime: Mapping[str, float | None]) -> str:
    cells = "".join(
        f'<div><dt>{window}</dt><dd data-w="{window}">{_percent(uptime[window])}</dd></div>'
        for window in WINDOWS
    )
    return f'<dl class="uptime" aria-label="uptime">{cells}</dl>'


@functools.lru_cache(maxsize=4096)
def _percent(share: float | None) -> str:
    return "–" if share is None else format_uptime(share)


def _bar(beats: Sequence[Outcome]) -> str:
    if not beats:
        return _beats_div("0", "")
    # The same first and last runs, as many: the same bar (the board only appends).
    first, last = beats[0], beats[-1]
    found = _BARS.get(id(last))
    if found is not None and found[0] is last and found[1] is first and found[2] == len(beats):
        return found[3]
    if len(_BARS) > _BEATS_KEPT:
        _BARS.clear()
    shown = _beats_div(repr(last.time), _beats(beats))
    _BARS[id(last)] = (last, first, len(beats), shown)
    return shown


def _beats_div(last: str, content: str) -> str:
    return (
        f'<div class="beats" data-f="beats" data-last="{last}" aria-label="last runs">'
        f"{content}</div>"
    )


def _beats(beats: Sequence[Outcome]) -> str:
    cache = _BEATS
    if len(cache) > _BEATS_KEPT:
        cache.clear()
    parts = []
    for outcome in beats:
        key = (outcome.time, outcome.status, outcome.duration, outcome.error)
        shown = cache.get(key)
        if shown is None:
            shown = cache[key] = _beat(outcome)
        parts.append(shown)
    return "".join(parts)


def _beat(outcome: Outcome) -> str:
    state = outcome.status.name.lower()
    title = f"{_utc(outcome.time)} · {state} · {format_latency(outcome.duration)}"
    if outcome.error is not None:
        title += f" · {outcome.error}"
    return f'<b class="beat {state}" title="{_e(title)}"></b>'


def _detail(last: Mapping[str, Any] | None) -> str:
    if last is None:
        return '<p class="detail" data-f="detail">waiting for a first run</p>'
    if last["error"] is not None:
        return f'<p class="detail error" data-f="detail">{_e(last["error"])}</p>'
    if last["value"] is not None:
        return f'<p class="detail" data-f="detail">value {_e(str(last["value"]))}</p>'
    return f'<p class="detail" data-f="detail">reply in {format_latency(last["duration"])}</p>'


def _facts(monitor: Mapping[str, Any], now: float) -> str:
    last = monitor["last"]
    if last is None:
        return ""
    facts = [f'last run <span data-ts="{last["time"]:.3f}">{_age(now - last["time"])}</span>']
    mean = monitor["latency"]["24h"]
    if mean is not None:
        facts.append(f"24h mean {format_latency(mean)}")
    if last["cert_expires"] is not None:
        facts.append(f"certificate expires in {round((last['cert_expires'] - now) / 86400)} days")
    return " · ".join(facts)


def _alert(alert: Mapping[str, Any] | None, now: float) -> str:
    if alert is None:
        return '<p class="facts alert" data-f="alert" hidden></p>'
    phase = str(alert["state"])
    since = alert.get("since")
    when = f" since {_utc(since)}" if since is not None and phase != "ok" else ""
    return (
        f'<p class="facts alert {_e(phase)}" data-f="alert"{_data("alert", phase)}>'
        f"alert {_e(phase)}{when}</p>"
    )


def render_monitor(detail: MonitorDetail, *, now: float | None = None) -> str:
    """``/monitors/NAME``: the monitor, its latency chart, uptime, incidents, last results
    and its script's last lines."""
    now = time.time() if now is None else now
    monitor = detail.monitor
    name = monitor["name"]
    last = monitor["last"]
    state = last["status"] if last is not None else "none"
    labels = " · ".join(f"{_e(k)}={_e(v)}" for k, v in sorted(monitor["labels"].items()))
    head = [
        f'<article class="monitor {state}"{_data("monitor", name)}>',
        f'<div class="top"><h3>{_e(name)}</h3><span class="state" data-f="state">'
        f"{state if last is not None else 'waiting'}</span></div>",
        f'<p class="target">{_e(_target(monitor))}</p>',
        f'<p class="facts">{labels}</p>' if labels else "",
        _bar(detail.recent),
        '<p class="beat-info" aria-live="polite" hidden></p>',
        _detail(last),
        f'<p class="facts" data-f="facts">{_facts(monitor, now)}</p>',
        _alert(monitor["alert"], now) if "alert" in monitor else "",
        '<p class="facts maintenance">in maintenance: notifications held back</p>'
        if monitor.get("maintenance")
        else "",
        "</article>",
    ]
    sections = [
        _panel("Latency", _chart(detail.results, now), "latency"),
        _panel("Uptime", _uptime_table(detail.windows), "uptime"),
        _panel("Incidents", _incidents_table(detail.incidents, now), "incidents"),
        _panel("Last results", _results_table(detail.results), "results"),
    ]
    if monitor["script"] is not None:
        sections.append(_panel("Script output", _output(detail.output), "output"))
    return _document(
        f"{name} · wsprobe agent",
        f'<header><p class="back"><a href="/">← all monitors</a></p>'
        f"<h1>{_e(name)}</h1></header>"
        f"<main>{''.join(head)}{''.join(sections)}</main>"
        f'<footer><a href="/api/monitors/{_e(name)}">JSON</a> · '
        f'<a href="/api/monitors/{_e(name)}/incidents">incidents</a> · '
        f'<a href="/badges/{_e(name)}/uptime/24h.svg">badge</a></footer>',
        refresh=0,
        beats=0,
    )


def _panel(title: str, content: str, kind: str) -> str:
    return f'<section class="panel" data-panel="{kind}"><h2>{title}</h2>{content}</section>'


def _uptime_table(windows: Mapping[str, Window]) -> str:
    rows = []
    for name in WINDOWS:
        window = windows.get(name) or Window()
        latency = "–" if window.latency is None else format_latency(window.latency)
        rows.append(
            f'<tr data-window="{name}"><td>{name}</td>'
            f'<td class="num">{_percent(window.uptime)}</td>'
            f'<td class="num">{window.runs}</td><td class="num">{window.runs - window.up}</td>'
            f'<td class="num">{latency}</td></tr>'
        )
    return _table("narrow", ("window", "uptime", "runs", "down", "mean latency"), rows)


def _incidents_table(incidents: Sequence[Incident], now: float) -> str:
    if not incidents:
        return "<p>No incidents.</p>"
    rows = []
    for incident in incidents:
        end = "ongoing" if incident.end is None else _utc(incident.end)
        lasted = (incident.end if incident.end is not None else now) - incident.start
        state = incident.state.name.lower()
        rows.append(
            f'<tr class="incident" data-state="{state}"><td class="when">{_utc(incident.start)}'
            f'</td><td class="when">{end}</td><td class="num">{_span(lasted)}</td>'
            f'<td class="state {state}">{state}</td><td class="num">{incident.runs}</td>'
            f'<td class="text">{_e(incident.error or "")}</td></tr>'
        )
    return _table("stack", ("started", "ended", "lasted", "worst", "runs", "first error"), rows)


def _results_table(results: Sequence[Outcome]) -> str:
    if not results:
        return "<p>No results yet.</p>"
    rows = []
    for outcome in reversed(results[-_LAST_RESULTS:]):
        state = outcome.status.name.lower()
        said = outcome.error if outcome.error is not None else outcome.value
        code = "" if outcome.status_code is None else str(outcome.status_code)
        rows.append(
            f'<tr class="result"><td class="when">{_utc(outcome.time)}</td>'
            f'<td class="state {state}">{state}</td>'
            f'<td class="num">{format_latency(outcome.duration)}</td><td class="num">{code}</td>'
            f'<td class="text">{_e("" if said is None else str(said))}</td></tr>'
        )
    return _table("stack", ("time", "state", "duration", "code", "value or error"), rows)


def _table(kind: str, headings: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    return (
        f'<div class="scroll"><table class="{kind}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _output(lines: Sequence[tuple[float, str]]) -> str:
    if not lines:
        return "<p>The script has written nothing yet.</p>"
    text = "\n".join(f"{_utc(at)}  {line}" for at, line in lines)
    return f'<pre class="output">{_e(text)}</pre>'


def _chart(results: Sequence[Outcome], now: float) -> str:
    """Latency over time: a line through every result, its state marked when not OK, a
    value axis in milliseconds and a time axis in UTC."""
    if len(results) < 2:
        return "<p>Not enough results for a chart yet.</p>"
    first = results[0].time
    last = max(now, results[-1].time)
    span = max(last - first, 1.0)
    highest = max(outcome.duration for outcome in results)
    tick = _nice_step(highest / 4)
    top = tick * max(1, math.ceil(highest / tick))
    plot_w = _CHART_WIDTH - _LEFT - _RIGHT
    plot_h = _CHART_HEIGHT - _TOP - _BOTTOM

    def x(moment: float) -> float:
        return _LEFT + (moment - first) / span * plot_w

    def y(seconds: float) -> float:
        return _TOP + plot_h - seconds / top * plot_h

    parts = []
    for i in range(round(top / tick) + 1):
        value = tick * i
        at = y(value)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_CHART_WIDTH - _RIGHT}" '
            f'y1="{at:.1f}" y2="{at:.1f}"/><text x="{_LEFT - 6}" y="{at + 4:.1f}" '
            f'text-anchor="end">{format_latency(value) if value else "0"}</text>'
        )
    step = next((s for s in _TIME_STEPS if span / s <= 8), _TIME_STEPS[-1])
    mark = math.ceil(first / step) * step
    marks = 0
    while mark <= last:
        at = x(mark)
        parts.append(
            f'<line class="axis" x1="{at:.1f}" x2="{at:.1f}" y1="{_TOP + plot_h}" '
            f'y2="{_TOP + plot_h + 4}"/><text class="time-mark" x="{at:.1f}" '
            f'y="{_CHART_HEIGHT - 8}" text-anchor="middle">{_clock(mark, step)}</text>'
        )
        mark += step
        marks += 1
    # A line per stretch of runs: where runs stopped (the agent was down, the monitor
    # paused) for more than five of their usual gaps, the line breaks.
    gaps = sorted(b.time - a.time for a, b in itertools.pairwise(results))
    broken = max(5 * gaps[len(gaps) // 2], 1.0)
    lines, points = [], [f"{x(results[0].time):.1f},{y(results[0].duration):.1f}"]
    for before, outcome in itertools.pairwise(results):
        if outcome.time - before.time > broken:
            lines.append(points)
            points = []
        points.append(f"{x(outcome.time):.1f},{y(outcome.duration):.1f}")
    lines.append(points)
    polylines = "".join(
        f'<polyline class="line" points="{" ".join(stretch)}"/>' for stretch in lines
    )
    dots = "".join(
        f'<circle class="{o.status.name.lower()}" cx="{x(o.time):.1f}" cy="{y(o.duration):.1f}" '
        f'r="2.5"/>'
        for o in results
        if o.status is not State.OK
    )
    label = (
        f"latency of the last {len(results)} runs, {_utc(first)} to {_utc(last)}, "
        f"up to {format_latency(max(o.duration for o in results))}"
    )
    return (
        '<div class="scroll">'
        f'<svg class="chart" viewBox="0 0 {_CHART_WIDTH} {_CHART_HEIGHT}" role="img" '
        f'aria-label="{_e(label)}" data-points="{len(results)}" data-marks="{marks}">'
        f"<title>{_e(label)}</title>{''.join(parts)}"
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_TOP + plot_h}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{_CHART_WIDTH - _RIGHT}" y1="{_TOP + plot_h}" '
        f'y2="{_TOP + plot_h}"/>{polylines}{dots}</svg></div>'
        '<p class="facts">times in UTC</p>'
    )


def _nice_step(seconds: float) -> float:
    # The value axis' spacing: 1, 2 or 5 times a power of ten, at or above ``seconds``.
    if seconds <= 0:
        return 0.001
    power = 10 ** math.floor(math.log10(seconds))
    return float(next(f * power for f in (1, 2, 5, 10) if f * power >= seconds * 0.999999))


def _clock(moment: float, step: int) -> str:
    fields = time.gmtime(moment)
    if step >= 86400 or (step >= 60 and fields.tm_hour == 0 and fields.tm_min == 0):
        return time.strftime("%b %d", fields)
    return time.strftime("%H:%M" if step >= 60 else "%H:%M:%S", fields)


def _document(title: str, content: str, *, refresh: float, beats: int, newest: float = 0.0) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-refresh="{refresh:g}" data-beats="{beats}" data-newest="{newest!r}">'
        f"{content}"
        f"<script>{_SCRIPT}</script></body></html>"
    )


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def _span(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _age(seconds: float) -> str:
    # As the page's script says it (its ``ago``), which keeps it current.
    return f"{_span(seconds)} ago"


def _data(name: str, value: str) -> str:
    return f' data-{name}="{_e(value)}"'


def _e(text: str) -> str:
    return html.escape(text, quote=True)
