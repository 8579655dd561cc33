"""`make bench`'s `/metrics` rendering in-process, side by side: the agent's exposition
of a thousand monitors against the one it replaced (prometheus_client's families built
and encoded at every scrape, read from git at ``BASELINE``), on the same state, rounds
interleaved, CPU time of this process.

The new exposition makes a monitor's lines when its result changes and joins them at a
scrape; it is measured both ways: a scrape alone (results came before, their lines are
made), and a scrape after every monitor changed (each line made again, then joined: a
scraper slower than every monitor's interval pays this over the interval, not in the
scrape).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from wsprobe.agent.metrics import AgentCollector, AgentFacts, MonitorSeries, exposition
from wsprobe.agent.outcome import Outcome, State

ROOT = Path(__file__).resolve().parent.parent
#: The last commit whose ``agent/metrics.py`` built prometheus_client families at each scrape.
BASELINE = "b68113a"


def _baseline() -> types.ModuleType | None:
    """``agent/metrics.py`` of :data:`BASELINE`, or ``None`` outside a git checkout."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BASELINE}:src/wsprobe/agent/metrics.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return None
    module = types.ModuleType("wsprobe.agent.baseline_metrics")
    module.__package__ = "wsprobe.agent"
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(found.stdout, f"{BASELINE}:agent/metrics.py", "exec"), module.__dict__)
    return module


def _state(monitors: int) -> list[tuple[dict[str, str], Outcome, dict[str, int]]]:
    """What a declarative monitor's run leaves: three phases, the upgrade's status."""
    now = time.time()
    return [
        (
            {"monitor": f"m{index}", "team": "core"},
            Outcome(
                now + index * 0.01,
                State.OK if index % 50 else State.CRITICAL,
                0.00123 + index * 1e-7,
                timings={"connect": 0.0002 + index * 1e-8, "upgrade": 0.0004, "reply": 0.0003},
                status_code=101,
            ),
            {"ok": 100 + index % 7, "critical": index % 3},
        )
        for index in range(monitors)
    ]


def _cpu(work: Callable[[], Any]) -> float:
    began = time.process_time()
    work()
    return time.process_time() - began


def compare(monitors: int, rounds: int) -> None:
    """Print the side-by-side CPU times and the ratio, pair by pair."""
    old = _baseline()
    if old is None:
        print(f"(no git history: the in-process comparison with {BASELINE} is left out)")
        return
    state = _state(monitors)
    facts = AgentFacts(monitors=monitors, in_flight=3, reloads={"success": 1}, last_reload_ok=True)
    series = []
    for labels, outcome, runs in state:
        made = MonitorSeries(labels)
        made.update(outcome, runs, 0)
        series.append(made)

    def before() -> bytes:
        # The old handler: a row per monitor (on the loop), families built and encoded.
        rows = [old.MonitorRow(labels, outcome, dict(runs), 0) for labels, outcome, runs in state]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(old.ResultsCollector(lambda: rows, facts=lambda: facts))
        ProcessCollector(registry=registry)
        body: bytes = old.render(registry, None)[0]
        return body

    def scrape() -> bytes:
        rows = [made.row(False, None) for made in series]
        own = CollectorRegistry(auto_describe=False)
        own.register(AgentCollector(facts))
        ProcessCollector(registry=own)
        return exposition(rows, own, None)[0]

    def everything_changed() -> bytes:
        for made, (_, outcome, runs) in zip(series, state, strict=True):
            made.update(outcome, runs, 0)
        return scrape()

    process = b"# HELP process_"
    if before().split(process)[0] != scrape().split(process)[0]:
        raise AssertionError("the two renderings differ before the process's families")
    took: dict[str, list[float]] = {"before": [], "scrape": [], "changed": []}
    for _ in range(rounds):
        took["before"].append(_cpu(before))
        took["scrape"].append(_cpu(scrape))
        took["changed"].append(_cpu(everything_changed))
    print(
        f"\n/metrics rendered in-process, {monitors} monitors, {rounds} interleaved rounds "
        f"(CPU ms: median, min-max)"
    )
    names = {
        "before": f"prometheus_client at each scrape ({BASELINE})",
        "scrape": "lines made per change, joined at a scrape",
        "changed": "the same, every monitor changed first",
    }
    for key, name in names.items():
        times = took[key]
        print(
            f"{name:44} {statistics.median(times) * 1e3:7.2f}  "
            f"({min(times) * 1e3:.2f}-{max(times) * 1e3:.2f})"
        )
    for key in ("scrape", "changed"):
        pairs = [b / n for b, n in zip(took["before"], took[key], strict=True)]
        print(
            f"{'speed-up, ' + key:44} {statistics.median(pairs):7.1f}x "
            f"(pairs {min(pairs):.1f}-{max(pairs):.1f})"
        )
