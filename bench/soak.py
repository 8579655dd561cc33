"""`make bench`'s soak: one `wsprobe agent` with a thousand monitors for minutes, a tenth
of them against hostile servers, and what the healthy nine tenths see.

The healthy monitors (declarative and scripted, every 10 s) ask bench/wsecho.c; the
hostile ones ask servers started here (bench/hostile_servers.py): floods of 1-byte
continuation frames and of pings, huge replies, replies that make a pattern backtrack
(a catastrophic `expect.regex`, a Lua `string.find`) and replies after the timeout.
The agent starts on a history holding its board's worth of results per monitor, as a
restarted agent does: what its memory does afterwards is not the board filling up.

Measured: the healthy monitors' runs against their schedule (the agent's own count of
missed slots, and the runs recorded between two scrapes against the slots between their
first and last run), the resident memory of the agent and its script workers every
10 s (its least-squares slope after the warm-up), `/metrics`' latency from a scrape
every 1.5 s, and the hostile monitors' runs (they must keep running too).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent_process import cpu_seconds, http_get, rss_mib, running_agent, tree_mib, tree_pids

Target = Callable[[str, str, str, bool], None]

HERE = Path(__file__).resolve().parent
MONITORS = 1000
INTERVAL = 10.0
HEALTHY_TIMEOUT = 5.0
HOSTILE_TIMEOUT = 2.0
#: A slow server replies this long after a hostile monitor gave up.
SLOW_REPLY = HOSTILE_TIMEOUT + 1.0
SCRAPE_EVERY = 1.5
RSS_EVERY = 10.0
WARM_UP = 120.0
MESSAGE = "hello"

#: The hostile tenth: (name, how many, its entry, its script), per hundred monitors.
#: ``{url}`` is the behaviour's server; a script's file is named after its kind.
HOSTILE = (
    ("continuation", 20, "url: '{url}', send: x, expect: {{contains: x}}", None),
    ("pings", 20, "url: '{url}', send: x, expect: {{contains: x}}", None),
    ("huge", 10, "url: '{url}', send: x", None),
    (
        "huge",
        5,
        "script: huge.lua",
        'local reply = ws.send_recv("{url}", "x")\nprint(reply)\nerror(reply)\n',
    ),
    ("backtracking", 15, "url: '{url}', send: x, expect: {{regex: '(a*)*b'}}", None),
    (
        "backtracking",
        5,
        "script: backtracking.lua",
        'local reply = ws.send_recv("{url}", "x")\n'
        'return string.find(reply, string.rep("a*", 40) .. "b")\n',
    ),
    ("slow", 15, "url: '{url}', send: x, expect: {{contains: late}}", None),
    ("slow", 10, "script: slow.lua", 'return ws.send_recv("{url}", "x")\n'),
)


@dataclass
class Scrape:
    """What one `/metrics` answer says of each monitor."""

    at: float
    runs: dict[str, float] = field(default_factory=dict)
    results: dict[str, Counter[str]] = field(default_factory=dict)
    skipped: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    status: dict[str, float] = field(default_factory=dict)
    agent: dict[str, float] = field(default_factory=dict)


def parse(body: bytes, at: float) -> Scrape:
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape(at)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            name = sample.labels.get("monitor")
            if name is None:
                if sample.name.startswith(("wsprobe_agent_", "wsprobe_history_")):
                    key = sample.name + "".join(f" {v}" for v in sample.labels.values())
                    scrape.agent[key] = sample.value
            elif sample.name == "wsprobe_monitor_runs_total":
                scrape.runs[name] = scrape.runs.get(name, 0.0) + sample.value
                scrape.results.setdefault(name, Counter())[sample.labels["result"]] += int(
                    sample.value
                )
            elif sample.name == "wsprobe_monitor_skipped_runs_total":
                scrape.skipped[name] = sample.value
            elif sample.name == "wsprobe_monitor_last_run_timestamp_seconds":
                scrape.last[name] = sample.value
            elif sample.name == "wsprobe_monitor_status":
                scrape.status[name] = sample.value
    return scrape


def write_config(
    folder: Path, echo_port: int, ports: dict[str, int]
) -> tuple[list[str], list[str]]:
    """The soak's configuration in ``folder``: the names of its healthy and hostile monitors."""
    (folder / "echo.lua").write_text(
        f'local reply = ws.send_recv("ws://127.0.0.1:{echo_port}/", "{MESSAGE}")\n'
        f'if reply ~= "{MESSAGE}" then error("unexpected reply") end\n'
        'return {value = #reply, status = "MetricOk"}\n'
    )
    lines = [
        f"defaults: {{interval: {INTERVAL:g}s, timeout: {HEALTHY_TIMEOUT:g}s}}",
        "concurrency: 200",
        "monitors:",
    ]
    healthy: list[str] = []
    hostile: list[str] = []
    for index in range(MONITORS - MONITORS // 10):
        name = f"healthy-{index}"
        healthy.append(name)
        if index % 2:
            lines.append(f"  - {{name: {name}, script: echo.lua}}")
        else:
            lines.append(
                f"  - {{name: {name}, url: 'ws://127.0.0.1:{echo_port}/', send: {MESSAGE}, "
                f"expect: {{contains: {MESSAGE}}}}}"
            )
    for kind, per_hundred, entry, script in HOSTILE:
        url = f"ws://127.0.0.1:{ports[kind]}/"
        if script is not None:
            (folder / entry.split()[-1]).write_text(script.format(url=url))
        for _ in range(per_hundred * MONITORS // 1000):
            name = f"hostile-{kind}-{'script' if script else 'check'}-{len(hostile)}"
            hostile.append(name)
            shown = entry.format(url=url)
            lines.append(f"  - {{name: {name}, {shown}, timeout: {HOSTILE_TIMEOUT:g}s}}")
    (folder / "agent.yaml").write_text("\n".join(lines) + "\n")
    return healthy, hostile


def prefill(state_dir: Path, healthy: list[str], hostile: list[str], now: float) -> int:
    """Write :data:`~wsprobe.agent.board.RECENT` results per monitor, one an interval up
    to ``now``, into the history in ``state_dir``, as a restarted agent finds them: its
    board starts full, so memory that grows afterwards is not the board filling up (which
    takes RECENT intervals, ten minutes at 10 s). Returns the rows written."""
    import sqlite3

    from wsprobe.agent.board import RECENT
    from wsprobe.agent.history import DATABASE_NAME, create_tables, insert_results
    from wsprobe.agent.outcome import Outcome, State

    phases = {"resolve": 1e-5, "connect": 2e-4, "upgrade": 6e-4, "reply": 3e-4}
    rows = []
    for step in range(RECENT, 0, -1):
        at = now - step * INTERVAL
        for index, name in enumerate(healthy):
            if index % 2:
                rows.append((name, Outcome(at, State.OK, 0.004, value=float(len(MESSAGE)))))
            else:
                rows.append((name, Outcome(at, State.OK, 0.0012, timings=phases, status_code=101)))
        rows += [
            (name, Outcome(at, State.CRITICAL, HOSTILE_TIMEOUT, error="x" * 80))
            for name in hostile
        ]
    state_dir.mkdir(parents=True)
    db = sqlite3.connect(state_dir / DATABASE_NAME, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        create_tables(db)
        db.execute("BEGIN")
        insert_results(db, rows)
        db.execute("COMMIT")
    finally:
        db.close()
    return len(rows)


def hostile_servers() -> tuple[subprocess.Popen[str], dict[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "hostile_servers.py"), str(SLOW_REPLY)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise SystemExit("bench: the hostile servers did not start")
    return process, json.loads(line)


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of ``(x, y)`` points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    return statistics.linear_regression(xs, ys).slope


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


def soak(echo_port: int, minutes: float, target: Target) -> None:
    """The soak, ``minutes`` long (the warm-up: its first fifth, at most 2 minutes)."""
    seconds = minutes * 60
    warm_up = min(WARM_UP, seconds / 5)
    print(
        f"\n12. Soak: `wsprobe agent` with {MONITORS} monitors every {INTERVAL:g} s for "
        f"{minutes:g} min, a tenth against hostile servers; warm-up {warm_up:.0f} s; "
        f"load average at start {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    servers, ports = hostile_servers()
    log: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as directory:
            folder = Path(directory)
            healthy, hostile = write_config(folder, echo_port, ports)
            rows = prefill(folder / "state", healthy, hostile, time.time())
            print(f"{'history at start':40} {rows} results, a board's worth per monitor")
            with running_agent(folder / "agent.yaml", folder / "state", log) as (process, base):
                found = _watch(process.pid, base, seconds, warm_up)
                endings = _endings(base, hostile)
                workers = len(tree_pids(process.pid)) - 1
                agent_rss = rss_mib(process.pid)
    finally:
        assert servers.stdin is not None
        servers.stdin.close()
        servers.wait(timeout=30)
        if servers.stdout is not None:
            servers.stdout.close()
    _report(found, healthy, hostile, log, workers, agent_rss, target)
    for group, ending in endings.items():
        print(f"{'  ' + group:40} {ending}")


def _endings(base: str, hostile: list[str]) -> dict[str, str]:
    """How the last run of the first hostile monitor of each kind ended."""
    endings = {}
    for name in hostile:
        group = name.rsplit("-", 1)[0]
        if group not in endings:
            last = json.loads(http_get(f"{base}api/monitors/{name}"))["last"]
            error = (last.get("error") or "")[:70]
            endings[group] = f"{last['status']} in {last['duration']:.2f} s: {error}"
    return endings


@dataclass
class _Watched:
    began: float
    rss: list[tuple[float, float]]
    latencies: list[tuple[float, float]]
    delays: list[tuple[float, float]]
    warm_up: float
    first: Scrape
    last: Scrape
    cpu: float
    own_cpu: float


def _watch(pid: int, base: str, seconds: float, warm_up: float) -> _Watched:
    """Scrape `/metrics` every :data:`SCRAPE_EVERY` s and sample the processes' memory
    every :data:`RSS_EVERY` s for ``seconds``; keep the scrapes at the warm-up's end and
    at the end."""
    began = time.monotonic()
    rss: list[tuple[float, float]] = []
    latencies: list[tuple[float, float]] = []
    delays: list[tuple[float, float]] = []
    first: Scrape | None = None
    cpu, own = cpu_seconds(pid), cpu_seconds(pid, descendants=False)
    next_rss = began
    while True:
        now = time.monotonic()
        if now - began >= seconds:
            break
        started = time.perf_counter()
        wall = time.time()
        body = http_get(base + "metrics")
        latencies.append((now - began, time.perf_counter() - started))
        # A badge is a few microseconds of the loop's: its wait is the loop's delay.
        asked = time.perf_counter()
        http_get(base + "badges/healthy-0/status.svg")
        delays.append((now - began, time.perf_counter() - asked))
        if first is None and now - began >= warm_up:
            first = parse(body, wall)
        if now >= next_rss:
            rss.append((now - began, tree_mib(pid)))
            next_rss += RSS_EVERY
        time.sleep(max(0.0, SCRAPE_EVERY - (time.perf_counter() - started)))
    cpu, own = cpu_seconds(pid) - cpu, cpu_seconds(pid, descendants=False) - own
    wall = time.time()
    last = parse(http_get(base + "metrics"), wall)
    assert first is not None
    took = time.monotonic() - began
    return _Watched(began, rss, latencies, delays, warm_up, first, last, cpu / took, own / took)


def _report(
    found: _Watched,
    healthy: list[str],
    hostile: list[str],
    log: list[str],
    workers: int,
    agent_rss: float,
    target: Target,
) -> None:
    first, last = found.first, found.last
    window = last.at - first.at
    # Between two scrapes, a monitor that kept its schedule ran once per slot between
    # its last run seen by the first and its last run seen by the second.
    missing = 0
    for name in healthy:
        slots = round((last.last[name] - first.last[name]) / INTERVAL)
        missing += max(0, slots - int(last.runs[name] - first.runs[name]))
    stale = [name for name in healthy + hostile if last.at - last.last.get(name, 0) > 2 * INTERVAL]
    skipped = sum(last.skipped[name] for name in healthy)
    skipped_after = skipped - sum(first.skipped[name] for name in healthy)
    healthy_runs = sum(last.runs[name] for name in healthy)
    print(
        f"{'healthy monitors':40} {len(healthy)}: {healthy_runs:.0f} runs, "
        f"{skipped:.0f} slots skipped (the agent's count; {skipped_after:.0f} after the "
        f"warm-up), {missing} runs missing from the schedule over the last {window:.0f} s"
    )
    by_result: Counter[str] = Counter()
    for name in healthy:
        by_result.update(last.results[name])
    print(f"{'healthy runs by result':40} {dict(by_result)}")
    # A healthy monitor's state changes but its first, as its log lines say them.
    changes = [
        line.rstrip() for line in log if ": monitor healthy-" in line and "new ->" not in line
    ]
    for line in changes[:5]:
        print(f"  {line[:150]}")
    target(
        "soak skips",
        "soak: healthy monitors skip no run",
        f"{skipped:.0f} skipped, {missing} missing, {len(stale)} stale",
        skipped == 0 and missing == 0 and not stale,
    )
    after = [(t / 60, mib) for t, mib in found.rss if t >= found.warm_up]
    rate = slope(after)
    mibs = [mib for _, mib in found.rss]
    print(
        f"{f'RSS, agent + {workers} workers':40} start {mibs[0]:.0f} MiB, after warm-up "
        f"{after[0][1] if after else float('nan'):.0f}, end {mibs[-1]:.0f}, max {max(mibs):.0f} "
        f"MiB ({len(found.rss)} samples; the agent alone {agent_rss:.0f} MiB at the end); "
        f"CPU {found.cpu * 100:.0f}% of one core (the agent's own process "
        f"{found.own_cpu * 100:.0f}%)"
    )
    target(
        "soak rss",
        "soak: RSS slope after warm-up < 1 MiB/min",
        f"{rate:+.2f} MiB/min ({len(after)} samples)",
        rate < 1.0,
    )
    times = [seconds for t, seconds in found.latencies if t >= found.warm_up]
    p99 = percentile(times, 0.99)
    print(
        f"{'/metrics during the soak':40} median {statistics.median(times) * 1e3:.0f} ms, "
        f"p99 {p99 * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms ({len(times)} scrapes after "
        "the warm-up)"
    )
    delays = [seconds for t, seconds in found.delays if t >= found.warm_up]
    print(
        f"{'a status badge (the loop alone)':40} median "
        f"{statistics.median(delays) * 1e3:.0f} ms, p99 {percentile(delays, 0.99) * 1e3:.0f} ms, "
        f"max {max(delays) * 1e3:.0f} ms"
    )
    target(
        "soak metrics",
        "soak: /metrics p99 < 100 ms",
        f"{p99 * 1e3:.0f} ms ({len(times)} scrapes)",
        p99 < 0.1,
    )
    hostile_runs = [last.runs.get(name, 0.0) for name in hostile]
    results: Counter[str] = Counter()
    for name in hostile:
        results.update(last.results.get(name, {}))
    states = Counter(int(last.status.get(name, -1)) for name in hostile)
    print(
        f"{'hostile monitors':40} {len(hostile)}: {sum(hostile_runs):.0f} runs "
        f"(each {min(hostile_runs):.0f}-{max(hostile_runs):.0f}), by result {dict(results)}; "
        f"now {dict(sorted(states.items()))} (0 ok, 1 warning, 2 critical, 3 unknown)"
    )
    frozen = [name for name in hostile if name in stale]
    target(
        "soak hostile",
        "soak: hostile monitors keep running, none OK",
        f"{len(hostile) - len(frozen)} of {len(hostile)} running, {states.get(0, 0)} OK",
        not frozen and not states.get(0, 0),
    )
    tracebacks = sum("Traceback" in line for line in log)
    internal = {
        key: value
        for key, value in last.agent.items()
        if ("internal_errors" in key or "dropped" in key) and value
    }
    routine = ("wsprobe agent: monitor ", "wsprobe agent: listening on ", "wsprobe agent: stop")
    unusual = [line.rstrip() for line in log if not line.split("Z ", 1)[-1].startswith(routine)]
    print(
        f"{'agent log':40} {len(log)} lines, {tracebacks} tracebacks, {len(unusual)} other than "
        f"a monitor's state change; internal errors and losses {internal or 'none'}"
    )
    for line in unusual[:10]:
        print(f"  {line[:150]}")
