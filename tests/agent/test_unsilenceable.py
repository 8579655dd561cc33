"""Nothing a monitored server, a script, a caller, the database or the disk does silences
the agent: a real ``wsprobe agent`` process, each attack next to healthy monitors.

Every test asserts the same things of the healthy monitors: they kept their schedule
(runs counted by ``/metrics``), never turned CRITICAL, and their history kept growing
(``/api/monitors/NAME/results``); of the agent: ``/metrics`` answered throughout, its
log has at most a line per problem and no traceback, and SIGTERM still exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Servers
from tests.support.agent import AgentProcess, agent_command, samples_of, value, wait_for
from tests.support.hostile import (
    Switchable,
    continuation_flood,
    directory_bytes,
    fetch_within,
    holds_silently,
    ping_flood,
    replies,
    rss_bytes,
    upgrade_reply,
)
from tests.support.net import connections_to
from tests.support.wire import RawHandler, frame, read_request

# Every case drives a real agent process for seconds: make test runs them, test-fast does not.
pytestmark = pytest.mark.slow

MiB = 1024 * 1024
HEALTHY = ("healthy-1", "healthy-2")
HEALTHY_INTERVAL = 0.25
#: Generous: the target is 100 ms; an agent whose loop is blocked misses it by seconds.
METRICS_BOUND = 3.0
#: What an attack may add to the agent's resident memory.
RSS_GROWTH = 64 * MiB
#: Log lines that are never a problem: start, stop, reloads.
_ROUTINE = ("listening on", "stopping", "stopped", "reloaded:")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def healthy_entries(servers: Servers) -> str:
    return "".join(
        f"  - {{name: {name}, url: '{servers.ws}/', interval: {HEALTHY_INTERVAL}s, "
        "timeout: 2s, expect: {contains: ping}}\n"
        for name in HEALTHY
    )


def write_config(tmp_path: Path, servers: Servers, hostile: str = "", top: str = "") -> Path:
    """Healthy monitors, then ``hostile`` (YAML list entries), under ``top`` settings."""
    path = tmp_path / "agent.yaml"
    path.write_text(f"{top}monitors:\n{healthy_entries(servers)}{hostile}")
    return path


def start(
    agents: list[AgentProcess],
    config: Path,
    state: Path,
    under: tuple[str, ...] = (),
) -> AgentProcess:
    agent = AgentProcess(config, state, under=under)
    agents.append(agent)
    return agent


def scrape(agent: AgentProcess) -> Samples:
    """``/metrics`` within :data:`METRICS_BOUND`, or a failed test."""
    started = time.monotonic()
    answer = fetch_within(agent.url + "metrics", METRICS_BOUND)
    assert answer is not None, (
        f"/metrics did not answer within {METRICS_BOUND}s "
        f"(waited {time.monotonic() - started:.1f}s)"
    )
    status, body = answer
    assert status == 200, body
    return samples_of(body)


def runs(samples: Samples, name: str, result: str | None = None) -> float:
    """The checks ``name`` ran (with ``result`` only, when given)."""
    return sum(
        count
        for (metric, labels), count in samples.items()
        if metric == "wsprobe_monitor_runs_total"
        and dict(labels).get("monitor") == name
        and (result is None or dict(labels).get("result") == result)
    )


def history(agent: AgentProcess, name: str) -> list[dict[str, object]]:
    answer = fetch_within(f"{agent.url}api/monitors/{name}/results?limit=10000", 30)
    assert answer is not None, f"the results of {name} did not come"
    status, body = answer
    assert status == 200, f"results of {name}: HTTP {status}: {body[:300]}"
    results: list[dict[str, object]] = json.loads(body)["results"]
    return results


def reaches(measure: Callable[[], int], count: float) -> Callable[[], bool]:
    return lambda: measure() >= count


def stored(agent: AgentProcess, name: str) -> int:
    return len(history(agent, name))


class Watch:
    """What a test checks before, during and after an attack on ``agent``."""

    def __init__(self, agent: AgentProcess, hostile: tuple[str, ...] = ()) -> None:
        self.agent = agent
        self.hostile = hostile
        self.names = HEALTHY + hostile
        # Every monitor has run once: the attack starts from a working agent.
        self.before = wait_for(
            lambda: self._all_ran(scrape(agent)),
            60,
            f"a first run of {self.names}",
        )
        self.peak_rss = self.start_rss = rss_bytes(agent.process.pid)

    def _all_ran(self, samples: Samples) -> Samples | None:
        return samples if all(runs(samples, name) for name in self.names) else None

    def observe(self, seconds: float) -> Samples:
        """Scrape every 0.2 s for ``seconds``; each scrape must answer in time."""
        deadline = time.monotonic() + seconds
        samples = scrape(self.agent)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            samples = scrape(self.agent)
            self.peak_rss = max(self.peak_rss, rss_bytes(self.agent.process.pid))
        return samples

    def kept_going(self, seconds: float, *, hostile_runs: int = 2) -> Samples:
        """Observe for ``seconds``, then assert the healthy monitors kept their schedule
        and stayed OK, the hostile ones kept running, and every history grew."""
        kept = {name: len(history(self.agent, name)) for name in self.names}
        after = self.observe(seconds)
        slots = seconds / HEALTHY_INTERVAL
        for name in HEALTHY:
            done = runs(after, name) - runs(self.before, name)
            assert done >= slots / 2, f"{name} ran {done} times in {slots:.0f} slots"
            assert runs(after, name, "critical") == 0, f"{name} turned critical"
            assert runs(after, name, "unknown") == 0, f"{name} turned unknown"
        for name in self.hostile:
            done = runs(after, name) - runs(self.before, name)
            assert done >= hostile_runs, f"hostile {name} ran {done} times: its task stopped"
        for name in self.names:
            counted = runs(after, name)
            wait_for(
                reaches(functools.partial(stored, self.agent, name), counted),
                15,
                f"the history of {name} to hold its {counted} runs",
            )
            assert len(history(self.agent, name)) > kept[name]
        return after

    def quiet(self, problems: int = 1) -> None:
        """The log: no traceback, no line longer than 4 KiB, and beyond routine lines
        and one state change per monitor, at most one line per problem."""
        lines = list(self.agent.lines)
        assert not any("Traceback" in line or line[:1].isspace() for line in lines), lines
        assert all(len(line) <= 4096 for line in lines), [line[:200] for line in lines]
        changes = [line for line in lines if " monitor " in line and " -> " in line]
        others = [line for line in lines if line not in changes and not _routine(line)]
        assert len(others) <= problems, others
        for name in self.names:
            mine = [line for line in changes if f" monitor {name}: " in line]
            assert len(mine) <= 2, mine

    def stops_cleanly(self, problems: int = 1) -> None:
        assert self.agent.stop() == 0, self.agent.lines[-5:]
        self.quiet(problems)


def _routine(line: str) -> bool:
    return any(f"wsprobe agent: {word}" in line for word in _ROUTINE)


# --- a corpus of hostile servers ---

_DEEP = 100_000
CORPUS: dict[str, tuple[RawHandler, str]] = {
    "absurd status code": (upgrade_reply(b"HTTP/1.1 99999999999999999999 X\r\n\r\n"), ""),
    "non-ASCII digits": (upgrade_reply("HTTP/1.1 \u0661\u0660\u0661 X\r\n\r\n".encode()), ""),
    "negative status code": (upgrade_reply(b"HTTP/1.1 -101 X\r\n\r\n"), ""),
    "1 MiB status line": (upgrade_reply(b"HTTP/1.1 101 " + b"x" * MiB + b"\r\n\r\n"), ""),
    "header without a colon": (
        upgrade_reply(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\x00\xff\r\n\r\n"
        ),
        "",
    ),
    "100,000 headers": (
        upgrade_reply(b"HTTP/1.1 101 S\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\n"),
        "",
    ),
    "1 MiB header value": (
        upgrade_reply(b"HTTP/1.1 101 S\r\nSec-WebSocket-Accept: " + b"A" * MiB + b"\r\n\r\n"),
        "",
    ),
    "JSON nested 100,000 deep": (
        replies(b"[" * _DEEP + b"]" * _DEEP),
        "expect: {json: {status: ok}}",
    ),
    "JSON object nested 100,000 deep": (
        replies(b'{"a":' * _DEEP + b"1" + b"}" * _DEEP),
        "expect: {json: {a: 1}}",
    ),
    "invalid UTF-8 text frame": (replies(b"\xff\xfe\xc0"), "expect: {contains: ok}"),
    "reserved opcode": (replies(b"x", opcode=0x3), ""),
    # A regex a backtracking engine would take exponential time over on this reply.
    "backtracking regex": (replies(b"a" * 30), "expect: {regex: '(a*)*b'}"),
}


def test_hostile_servers_beside_healthy_monitors(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    # Every server of the corpus at once, each a monitor of its own: one agent and one
    # observation for all (an agent a case would cost the suite ~40 s).
    names = {f"hostile-{index}": case for index, case in enumerate(CORPUS)}
    entries = "".join(
        f"  - {{name: {name}, url: '{raw_server(CORPUS[case][0])}', interval: 0.5s, "
        f"timeout: 2s, {CORPUS[case][1]}}}\n"
        for name, case in names.items()
    )
    agent = start(agents, write_config(tmp_path, servers, entries), tmp_path / "state")
    watch = Watch(agent, tuple(names))
    after = watch.kept_going(4)
    for name, case in names.items():
        assert value(after, "probe_success", monitor=name) == 0, case
        last = history(agent, name)[-1]
        assert isinstance(last["error"], str), case
        assert len(last["error"]) <= 4096, f"{case}: an error is one bounded line"
    watch.quiet(problems=len(names))
    watch.stops_cleanly(problems=len(names))


@pytest.mark.slow
def test_8_mib_every_run_stays_out_of_the_state_and_the_pages(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    # 8 MiB each run from a server and from a script, at once: one agent for both.
    (tmp_path / "huge.lua").write_text('return string.rep("x", 8 * 1024 * 1024)\n')
    reply = raw_server(replies(b"x" * 8 * MiB))
    entries = (
        f"  - {{name: huge-reply, url: '{reply}', interval: 0.5s, timeout: 4s}}\n"
        "  - {name: huge-script, script: huge.lua, interval: 0.5s, timeout: 4s}\n"
    )
    agent = start(agents, write_config(tmp_path, servers, entries), tmp_path / "state")
    watch = Watch(agent, ("huge-reply", "huge-script"))
    size = directory_bytes(tmp_path / "state")
    watch.kept_going(4, hostile_runs=3)
    grown = directory_bytes(tmp_path / "state") - size
    assert grown < 2 * MiB, f"the state dir grew {grown / MiB:.0f} MiB"
    for name in watch.hostile:
        for path in ("", "api/monitors", f"api/monitors/{name}", f"api/monitors/{name}/results"):
            answer = fetch_within(agent.url + path, 30)
            assert answer is not None
            assert len(answer[1]) < MiB, f"/{path} is {len(answer[1]) / MiB:.0f} MiB"
    assert watch.peak_rss - watch.start_rss < RSS_GROWTH
    watch.quiet(problems=2)
    watch.stops_cleanly(problems=2)


@pytest.mark.slow
def test_flooding_servers_are_cut_at_the_timeout(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    # Both floods at once, a monitor each: one agent and one observation for both.
    floods = {"continuation": continuation_flood, "ping": ping_flood}
    entries = "".join(
        f"  - {{name: {name}, url: '{raw_server(flood)}', interval: 1s, timeout: 5s}}\n"
        for name, flood in floods.items()
    )
    agent = start(agents, write_config(tmp_path, servers, entries), tmp_path / "state")
    watch = Watch(agent, tuple(floods))
    watch.kept_going(6, hostile_runs=1)
    for name in floods:
        durations = [float(str(result["duration"])) for result in history(agent, name)]
        assert max(durations) < 6, f"{name}: a 5 s check took {max(durations):.1f}s"
    assert watch.peak_rss - watch.start_rss < RSS_GROWTH, (
        f"RSS grew {(watch.peak_rss - watch.start_rss) / MiB:.0f} MiB"
    )
    watch.quiet(problems=len(floods))
    watch.stops_cleanly(problems=len(floods))


# --- what Hypothesis makes of status lines, headers and frames ---

_status_lines = st.one_of(
    st.builds(
        lambda code, reason: f"HTTP/1.1 {code} {reason}".encode(errors="surrogatepass"),
        st.integers(-(10**25), 10**25) | st.sampled_from([101, 200, 301, 401]),
        st.text(max_size=30),
    ),
    st.binary(max_size=300),
)
_headers = st.lists(
    st.tuples(st.binary(max_size=30), st.binary(max_size=200)).map(lambda p: p[0] + b": " + p[1]),
    max_size=30,
)
_frames = st.lists(
    st.one_of(
        st.builds(
            lambda opcode, payload, fin, rsv, mask: frame(
                opcode, payload, fin=fin, rsv=rsv, mask=mask
            ),
            st.integers(0, 15),
            st.binary(max_size=300),
            st.booleans(),
            st.sampled_from([0, 0x10, 0x20, 0x40]),
            st.booleans(),
        ),
        st.integers(1, 200_000).map(lambda depth: frame(0x1, b"[" * depth + b"]" * depth)),
        st.binary(max_size=50),
    ),
    max_size=8,
)
_replies = st.one_of(
    st.builds(
        lambda line, headers: line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n",
        _status_lines,
        _headers,
    ).map(lambda reply: (reply, False)),
    _frames.map(lambda frames: (b"".join(frames), True)),
)


@pytest.mark.slow
def test_generated_replies_beside_healthy_monitors(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    server = Switchable()
    url = raw_server(server)
    entry = (
        f"  - {{name: hostile, url: '{url}', interval: 0.2s, timeout: 1s, "
        "expect: {json: {status: ok}}}\n"
    )
    agent = start(agents, write_config(tmp_path, servers, entry), tmp_path / "state")
    watch = Watch(agent, ("hostile",))
    started = time.monotonic()

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        # No shrinking: each example costs runs of a real agent, and the first
        # failure already names the reply.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(_replies)
    # The replies known to have silenced a monitor, always tried first.
    @example((b"HTTP/1.1 99999999999999999999 X\r\n\r\n", False))
    @example((frame(0x1, b"[" * _DEEP + b"]" * _DEEP), True))
    def attack(reply: tuple[bytes, bool]) -> None:
        server.set(reply[0], upgrade=reply[1])
        # Two runs: at least one whole run against this reply.
        before = runs(scrape(agent), "hostile")
        wait_for(
            lambda: runs(scrape(agent), "hostile") >= before + 2,
            15,
            "two more runs of the hostile monitor",
        )

    attack()
    watch.kept_going(2)
    elapsed = time.monotonic() - started
    after = scrape(agent)
    slots = elapsed / HEALTHY_INTERVAL
    for name in HEALTHY:
        assert runs(after, name) - runs(watch.before, name) >= slots / 2
    watch.quiet(problems=0)
    watch.stops_cleanly()


# --- the database and the disk ---

_HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@contextlib.contextmanager
def write_lock_held(database: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the write lock of ``database`` for ``seconds``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(database), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    with holder.stdout:
        try:
            assert holder.stdout.readline() == "held\n"
            yield holder
        finally:
            holder.wait(timeout=seconds + 30)


def stored_rows(database: Path, name: str, until: float) -> int:
    """The rows of ``name`` for runs started at or before ``until``."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        count = db.execute(
            "SELECT count(*) FROM agent_results WHERE monitor = ? AND time <= ?", (name, until)
        ).fetchone()[0]
    assert isinstance(count, int)
    return count


def nothing_lost(database: Path, samples: Samples, names: tuple[str, ...] = HEALTHY) -> None:
    """Every run of ``names`` counted in ``samples`` reaches the database: the rows up to
    the last run ``samples`` shows, which later runs cannot make up for."""
    for name in names:
        counted = runs(samples, name)
        until = value(samples, "wsprobe_monitor_last_run_timestamp_seconds", monitor=name)
        assert until is not None, f"{name} has not run"
        wait_for(
            reaches(functools.partial(stored_rows, database, name, until), counted),
            20,
            f"{counted} results of {name} in the database",
        )
        assert stored_rows(database, name, until) == counted


@pytest.mark.slow
def test_a_held_write_lock_loses_nothing_and_stalls_nothing(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    config = write_config(tmp_path, servers)
    agent = start(agents, config, tmp_path / "state")
    watch = Watch(agent)
    database = tmp_path / "state" / "wsprobe.db"
    with write_lock_held(database, 7):
        before = watch.observe(2)
        # A reload under the lock: one monitor removed, one added.
        config.write_text(config.read_text().replace("name: healthy-2", "name: healthy-3"))
        agent.signal(signal.SIGHUP)
        held = watch.observe(3)
    nothing_lost(database, before)
    # The reload may have been applied (healthy-2 gone) or refused (healthy-3 absent).
    nothing_lost(database, held, ("healthy-1",))

    def reload_applied_or_refused() -> bool:
        samples = scrape(agent)
        names = {m["name"] for m in agent.json("/api/monitors")["monitors"]}
        succeeded = value(samples, "wsprobe_agent_config_reloads_total", result="success")
        failed = value(samples, "wsprobe_agent_config_reloads_total", result="failure")
        return (succeeded == 1 and names == {"healthy-1", "healthy-3"}) or (
            failed == 1 and names == set(HEALTHY)
        )

    wait_for(reload_applied_or_refused, 20, "the reload applied, or reported as failed")
    watch.quiet(problems=3)
    assert agent.stop() == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted when the test ends."""
    mount = tmp_path / "state"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot mount a tmpfs (the suite runs as root): {exc}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until the disk is full."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_a_full_disk_keeps_results_until_space_returns(
    servers: Servers, tmp_path: Path, tiny_disk: Path, agents: list[AgentProcess]
) -> None:
    agent = start(agents, write_config(tmp_path, servers), tiny_disk)
    watch = Watch(agent)
    filler = fill(tiny_disk)
    full = watch.observe(3)
    assert agent.process.poll() is None
    filler.unlink()
    nothing_lost(tiny_disk / "wsprobe.db", full)
    # The failure and the recovery, each said once.
    watch.quiet(problems=2)
    watch.stops_cleanly(problems=2)


# --- signals and callers ---


@pytest.mark.slow
def test_a_sighup_storm_is_coalesced(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    # A thousand idle monitors make each reload a real piece of work.
    idle = "".join(
        f"  - {{name: idle-{i}, url: '{servers.ws}/', interval: 1d}}\n" for i in range(1000)
    )
    agent = start(agents, write_config(tmp_path, servers, idle), tmp_path / "state")
    watch = Watch(agent)

    def storm() -> None:
        for _ in range(300):
            agent.signal(signal.SIGHUP)
            time.sleep(0.005)

    stormer = threading.Thread(target=storm)
    stormer.start()
    try:
        watch.kept_going(3)
    finally:
        stormer.join()

    def settled() -> float | None:
        # The count once it stops moving: reloads still queued would show a second later.
        first = value(scrape(agent), "wsprobe_agent_config_reloads_total", result="success")
        time.sleep(1)
        second = value(scrape(agent), "wsprobe_agent_config_reloads_total", result="success")
        return second if first and first == second else None

    reloads = wait_for(settled, 60, "the reloads to settle")
    assert reloads < 150, f"300 signals made {reloads:.0f} reloads"
    watch.quiet()
    watch.stops_cleanly()


async def _flood_probes(url: str, count: int) -> list[tuple[int, str]]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> tuple[int, str]:
            try:
                async with session.get(url) as response:
                    return response.status, await response.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                return 0, f"{type(exc).__name__}: {exc}"

        return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.mark.slow
def test_a_probe_flood_gets_503_and_spares_the_monitors(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    silent = raw_server(holds_silently)
    config = write_config(
        tmp_path,
        servers,
        top="concurrency: 50\nmodules:\n  ws_echo: {send: ping, timeout: 3s}\n",
    )
    # The descriptors a service manager commonly allows.
    agent = start(
        agents, config, tmp_path / "state", under=("prlimit", "--nofile=1024:1024", "--")
    )
    watch = Watch(agent)
    answers: list[tuple[int, str]] = []
    url = f"{agent.url}probe?module=ws_echo&target={quote(silent, safe='')}"
    flooder = threading.Thread(target=lambda: answers.extend(asyncio.run(_flood_probes(url, 600))))
    flooder.start()
    try:
        watch.kept_going(4)
    finally:
        flooder.join(timeout=90)
    statuses = sorted({status for status, _ in answers})
    assert len(answers) == 600
    assert set(statuses) <= {200, 503}, [a for a in answers if a[0] not in (200, 503)][:3]
    refused = [body for status, body in answers if status == 503]
    assert refused, "600 probes with concurrency 50: the excess is refused"
    assert all(body.count("\n") == 1 and body.endswith("\n") for body in refused)
    assert not any("too many open files" in line.lower() for line in agent.lines)
    watch.quiet()
    watch.stops_cleanly()


def test_scheduled_checks_and_probes_share_one_concurrency(
    raw_server: Callable[[RawHandler], str], tmp_path: Path, agents: list[AgentProcess]
) -> None:
    # Every check the agent runs, scheduled or probed, holds a connection to one silent
    # server: the kernel's count of those connections is the agent's checks in flight.
    silent = raw_server(holds_silently)
    port = int(silent.rsplit(":", 1)[1].strip("/"))
    config = tmp_path / "agent.yaml"
    # Each monitor holds a slot 2 s out of every 4: probes fill the gaps, and a
    # monitor's next run must wait for a slot they hold rather than add one.
    config.write_text(
        "concurrency: 4\n"
        "modules:\n  hold: {timeout: 3s, concurrency: 4}\n"
        "monitors:\n"
        + "".join(
            f"  - {{name: m{index}, url: '{silent}', interval: 4s, timeout: 2s}}\n"
            for index in range(4)
        )
    )
    agent = start(agents, config, tmp_path / "state")
    url = f"{agent.url}probe?module=hold&target={quote(silent, safe='')}"
    answers: list[tuple[int, str]] = []
    peak = 0
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            answers.extend(asyncio.run(_flood_probes(url, 8)))

    flooder = threading.Thread(target=flood)
    flooder.start()
    # A socket the agent closes is released by its event loop at the end of the loop's
    # turn, and the next check may connect within that turn: the count is taken over
    # 20 ms, longer than a turn, much shorter than a check holding a slot.
    recent: deque[int] = deque(maxlen=5)
    try:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            recent.append(connections_to(port))
            peak = max(peak, min(recent))
            time.sleep(0.005)
    finally:
        stop.set()
        flooder.join(timeout=60)
    samples = scrape(agent)
    assert peak == 4, f"{peak} checks in flight with concurrency 4"
    assert all(runs(samples, f"m{index}") >= 1 for index in range(4)), samples
    statuses = {status for status, _ in answers}
    assert statuses == {200, 503}, statuses
    refusals = {body for status, body in answers if status == 503}
    everything = "busy: 4 checks in flight (concurrency), try later\n"
    assert everything in refusals, refusals
    assert refusals <= {
        everything,
        'busy: 4 probes of module "hold" in flight (its concurrency), try later\n',
    }


# --- validation and redaction ---


def refused_config(config: Path) -> tuple[int, str]:
    """``wsprobe agent CONFIG``'s exit status and stderr; a failed test if it starts."""
    process = subprocess.Popen(
        agent_command(config),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=config.parent,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        if "listening on" in first:
            pytest.fail(f"the agent started with this configuration: {first.strip()}")
        rest = process.stderr.read()
        return process.wait(timeout=30), first + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ('{name: "web\\n", url: "ws://127.0.0.1:9/"}', "monitors[2].name"),
        ('{name: web, url: "ws://127.0.0.1:9/", labels: {team: "core\\n"}}', "team"),
        ('{name: web, url: "ws://127.0.0.1:9/", interval: 1s, interval: 2s}', "interval"),
    ],
    ids=["name ending in a line break", "label ending in a line break", "duplicate key"],
)
def test_a_config_the_agent_must_refuse(
    entry: str, named: str, servers: Servers, tmp_path: Path
) -> None:
    code, stderr = refused_config(write_config(tmp_path, servers, f"  - {entry}\n"))
    assert code == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert named in stderr


@pytest.fixture(scope="class")
def queried(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watch]:
    folder = tmp_path_factory.mktemp("queried")
    agent = AgentProcess(write_config(folder, servers), folder / "state")
    try:
        yield Watch(agent)
    finally:
        agent.kill()


class TestBadResultsQueries:
    """One agent for every bad query (a query changes nothing the next one sees), its
    log free of problems after each; stopped once they are done."""

    @pytest.mark.parametrize(
        "query",
        ["limit=1" + "0" * 30, "limit=" + "9" * 5000, "since=" + "9" * 5000, "limit=%EF%BC%91"],
        ids=["limit 10**30", "limit of 5000 digits", "since of 5000 digits", "fullwidth digit"],
    )
    def test_a_bad_results_query_is_a_400(self, query: str, queried: Watch) -> None:
        status, _, body = queried.agent.get(f"/api/monitors/healthy-1/results?{query}")
        if query.startswith("since"):
            assert status in (200, 400), body[:300]
        else:
            assert status == 400, body[:300]
        assert status != 200 or json.loads(body)["monitor"] == "healthy-1"
        assert body.count("\n") <= 1 or status == 200
        queried.quiet(problems=0)


class Recorder:
    """A server that records every request head it receives, and answers nothing."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    def __call__(self, conn: socket.socket) -> None:
        self.heads.append(read_request(conn))


def test_probe_sends_a_modules_credentials_only_to_its_targets(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    stranger = Recorder()
    elsewhere = raw_server(stranger)
    top = (
        "modules:\n"
        "  authed:\n"
        "    headers: {Authorization: Bearer SECRET-TOKEN}\n"
        f"    targets: '{servers.ws}/.*'\n"
    )
    agent = start(agents, write_config(tmp_path, servers, top=top), tmp_path / "state")
    allowed = f"{servers.ws}/inspect"
    status, _, body = agent.get(f"/probe?module=authed&target={quote(allowed)}&debug=true")
    assert status == 200
    assert "authorization" in body.lower()  # the module works where it is meant to
    status, _, _ = agent.get(f"/probe?module=authed&target={quote(elsewhere)}")
    assert status in (200, 400, 403)
    assert not any(b"SECRET-TOKEN" in head for head in stranger.heads), stranger.heads


def test_tokens_in_query_strings_are_never_shown(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    secret = "SECRET-1234"
    entry = (
        f"  - {{name: tokened, url: '{servers.ws}/close?access_token={secret}&x=1', "
        "interval: 0.25s}\n"
    )
    top = "modules:\n  ws_echo: {send: ping}\n"
    agent = start(agents, write_config(tmp_path, servers, entry, top), tmp_path / "state")
    Watch(agent, ("tokened",))
    target = quote(f"{servers.ws}/close?token=a&access_token={secret}&password={secret}")
    shown = [
        agent.get(path)[2]
        for path in (
            "/",
            "/api/monitors",
            "/api/monitors/tokened",
            "/api/monitors/tokened/results",
            "/metrics",
            f"/probe?module=ws_echo&target={target}&debug=true",
        )
    ]
    shown.append("\n".join(agent.lines))
    for text in shown:
        assert secret not in text, text[:2000]


# --- scripts that flood the agent ---


@pytest.mark.slow
def test_a_script_printing_in_a_loop_is_bounded(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    (tmp_path / "chatty.lua").write_text('while true do print(string.rep("x", 200)) end\n')
    entry = "  - {name: hostile, script: chatty.lua, interval: 2.5s, timeout: 2s}\n"
    agent = start(agents, write_config(tmp_path, servers, entry), tmp_path / "state")
    watch = Watch(agent, ("hostile",))
    watch.kept_going(5, hostile_runs=1)
    assert watch.peak_rss - watch.start_rss < RSS_GROWTH, (
        f"RSS grew {(watch.peak_rss - watch.start_rss) / MiB:.0f} MiB"
    )
    watch.quiet()
    watch.stops_cleanly()


def test_running_out_of_descriptors_fails_checks_not_the_agent(
    raw_server: Callable[[RawHandler], str],
    servers: Servers,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    """Under an open-file limit the checks in flight exceed, each check that finds no
    descriptor fails with one line; the agent goes on and stops cleanly."""
    silent = raw_server(holds_silently)
    hostile = "".join(
        f"  - {{name: held-{index}, url: '{silent}', interval: 1s, timeout: 3s}}\n"
        for index in range(60)
    )
    config = write_config(tmp_path, servers, hostile, top="workers: 1\nconcurrency: 100\n")
    agent = start(agents, config, tmp_path / "state", under=("prlimit", "--nofile=64:64", "--"))
    agent.wait_for_log("too many open files", 60)
    lines = list(agent.lines)
    starved = [line for line in lines if "too many open files" in line]
    assert all(" monitor " in line and " -> critical: " in line for line in starved), starved
    assert not any("Traceback" in line or "internal error" in line for line in lines), lines
    assert agent.process.poll() is None, lines[-5:]
    assert agent.stop() == 0, agent.lines[-5:]
