"""``wsprobe agent`` as a real process on loopback, scraped over HTTP."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from tests.conftest import DELAYED, Servers
from tests.support.agent import AgentProcess, samples_of, value, wait_for
from wsprobe.agent.sharding import shard_of

pytestmark = pytest.mark.slow

SCRIPT_WARNING = 'return {value = 42, status = "MetricWarning"}\n'
SCRIPT_FAILS = 'error("the service is down")\n'
# The port of TARGET, as the script's value: proof the target reached the script.
SCRIPT_TARGET = (
    'print("probing", os.getenv("TARGET"))\n'
    'log.warn("about to return")\n'
    'return tonumber(string.match(os.getenv("TARGET"), ":(%d+)/"))\n'
)


def write_config(directory: Path, text: str) -> Path:
    path = directory / "agent.yaml"
    path.write_text(text)
    return path


def start(agents: list[AgentProcess], config: Path, state: Path, *extra: str) -> AgentProcess:
    agent = AgentProcess(config, state, *extra)
    agents.append(agent)
    return agent


def full_config(servers: Servers, tmp_path: Path) -> Path:
    (tmp_path / "warn.lua").write_text(SCRIPT_WARNING)
    (tmp_path / "fails.lua").write_text(SCRIPT_FAILS)
    (tmp_path / "target.lua").write_text(SCRIPT_TARGET)
    return write_config(
        tmp_path,
        f"""
defaults: {{interval: 0.2s, timeout: 5s}}
monitors:
  - name: echo
    url: {servers.ws}/
    send: '{{"status": "ok", "n": 1}}'
    expect: {{contains: status, regex: "^[{{]", json: {{status: ok}}, max_seconds: 2}}
    labels: {{team: core, tier: 1}}
  - name: closing
    url: ws://user:secret@{servers.ws.removeprefix("ws://")}/close
  - name: slow
    url: {servers.ws}/delay
    expect: {{warn_seconds: 0.5}}
  - name: secure
    url: {servers.wss}/
    cafile: {servers.ca_file}
    expect: {{cert_warn_days: 1}}
  - name: scripted
    script: warn.lua
  - name: broken-script
    script: fails.lua
{MODULES}""",
    )


MODULES = """modules:
  ws_echo: {send: ping, expect: {contains: ping}, timeout: 5s}
  scripted: {script: target.lua}
"""


@pytest.fixture(scope="module")
def prober_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prober")
    (folder / "target.lua").write_text(SCRIPT_TARGET)
    write_config(folder, f"defaults: {{interval: 0.2s, timeout: 5s}}\nmonitors: []\n{MODULES}")
    return folder


@pytest.fixture(scope="module")
def prober(prober_dir: Path) -> Iterator[AgentProcess]:
    """One agent for the tests of ``/probe``: its modules and no monitors (a probe
    leaves nothing behind that another would see)."""
    agent = AgentProcess(prober_dir / "agent.yaml", prober_dir / "state")
    yield agent
    agent.kill()


MONITORS = ["echo", "closing", "slow", "secure", "scripted", "broken-script"]


def scraped_all(agent: AgentProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    samples = agent.metrics()
    names = {
        dict(labels)["monitor"]
        for name, labels in samples
        if name == "wsprobe_monitor_last_run_timestamp_seconds"
    }
    return samples if names == set(MONITORS) else None


def every_last(agent: AgentProcess) -> dict[str, Any] | None:
    listing: dict[str, Any] = agent.json("/api/monitors")
    return listing if all(monitor["last"] for monitor in listing["monitors"]) else None


def test_metrics_of_every_kind_of_monitor(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    agent = start(agents, full_config(servers, tmp_path), tmp_path / "state")
    samples = wait_for(lambda: scraped_all(agent), 60, "a result of every monitor")
    now = time.time()
    echo = {"monitor": "echo", "team": "core", "tier": "1"}
    assert value(samples, "probe_success", **echo) == 1
    assert value(samples, "wsprobe_monitor_status", **echo) == 0
    assert value(samples, "probe_websocket_status_code", **echo) == 101
    for phase in ("resolve", "connect", "upgrade", "reply"):
        seconds = value(samples, "probe_websocket_duration_seconds", **echo, phase=phase)
        assert seconds is not None
        assert 0 <= seconds < 5
    assert value(samples, "probe_websocket_duration_seconds", **echo, phase="tls") is None
    assert 0 < (value(samples, "probe_duration_seconds", **echo) or 0) < 5
    last_run = value(samples, "wsprobe_monitor_last_run_timestamp_seconds", **echo) or 0
    assert now - 60 < last_run <= now
    assert (value(samples, "wsprobe_monitor_runs_total", **echo, result="ok") or 0) >= 1

    assert value(samples, "probe_success", monitor="closing") == 0
    assert value(samples, "wsprobe_monitor_status", monitor="closing") == 2
    # A warning is a threshold crossed by a reply that came and matched.
    assert value(samples, "wsprobe_monitor_status", monitor="slow") == 1
    assert value(samples, "probe_success", monitor="slow") == 1
    assert (
        value(samples, "probe_websocket_duration_seconds", monitor="slow", phase="tls")
    ) is None
    secure_tls = value(samples, "probe_websocket_duration_seconds", monitor="secure", phase="tls")
    assert secure_tls is not None
    expiry = value(samples, "probe_ssl_earliest_cert_expiry", monitor="secure") or 0
    assert expiry > now + 86400
    assert value(samples, "wsprobe_monitor_status", monitor="secure") == 0

    assert value(samples, "wsprobe_monitor_value", monitor="scripted") == 42
    assert value(samples, "wsprobe_monitor_status", monitor="scripted") == 1
    assert value(samples, "wsprobe_monitor_status", monitor="broken-script") == 2
    assert value(samples, "probe_success", monitor="broken-script") == 0
    assert value(samples, "wsprobe_agent_monitors") == len(MONITORS)
    # One log line per state change, saying why.
    agent.wait_for_log(
        r"wsprobe agent: monitor closing: new -> critical: "
        r"no response from web socket \(server closed with 1000\)$"
    )
    agent.wait_for_log(
        r"wsprobe agent: monitor slow: new -> warning: reply in \d+\.\d+s \(warning 0\.5\)$"
    )
    assert not any("monitor echo:" in line for line in agent.lines)  # OK from the start
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0

    # The slow monitor (1 s replies every 0.2 s) misses slots, and says so.
    skipped = wait_for(
        lambda: value(agent.metrics(), "wsprobe_monitor_skipped_runs_total", monitor="slow"),
        30,
        "a skipped slot",
    )
    assert skipped >= 1


def test_openmetrics_when_the_scraper_asks(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    agent = start(agents, full_config(servers, tmp_path), tmp_path / "state")
    wait_for(lambda: scraped_all(agent), 60, "a result of every monitor")
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    status, headers, body = agent.get("/metrics", {"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith("# EOF\n")
    families = {family.name: family for family in openmetrics_families(body)}  # type: ignore[no-untyped-call]
    assert families["wsprobe_monitor_runs"].type == "counter"
    assert families["probe_success"].type == "gauge"
    _, plain_headers, plain = agent.get("/metrics")
    assert plain_headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in plain


def test_api_lists_monitors_and_their_results(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    agent = start(agents, full_config(servers, tmp_path), tmp_path / "state")
    wait_for(
        lambda: len(agent.json("/api/monitors/echo/results")["results"]) >= 3, 60, "3 results"
    )
    # The scripts' first runs wait for the workers to start: wait for every monitor's.
    listing = wait_for(lambda: every_last(agent), 60, "a result of every monitor")
    assert [monitor["name"] for monitor in listing["monitors"]] == MONITORS
    echo = listing["monitors"][0]
    assert echo["url"] == f"{servers.ws}/"
    assert echo["labels"] == {"team": "core", "tier": "1"}
    assert echo["interval"] == 0.2
    assert echo["last"]["status"] == "ok"
    assert echo["counts"]["ok"] >= 3
    # Credentials in a URL are used, never shown.
    assert listing["monitors"][1]["url"] == f"{servers.ws}/close"
    broken = listing["monitors"][5]
    assert broken["last"]["status"] == "critical"
    assert broken["last"]["error"] == "broken-script:1: the service is down"
    results = agent.json("/api/monitors/echo/results")["results"]
    times = [result["time"] for result in results]
    assert times == sorted(times)
    assert set(results[0]) == {
        "time",
        "status",
        "value",
        "error",
        "duration",
        "timings",
        "status_code",
        "cert_expires",
    }
    since = results[-2]["time"]
    later = agent.json(f"/api/monitors/echo/results?since={since}")["results"]
    assert later
    assert all(result["time"] >= since for result in later)
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert agent.json(f"/api/monitors/echo/results?since={iso}")["results"] == []
    assert len(agent.json("/api/monitors/echo/results?limit=2")["results"]) == 2

    assert agent.get("/api/monitors/nope/results") == (
        404,
        agent.get("/api/monitors/nope/results")[1],
        'no monitor "nope"\n',
    )
    cases = [
        (
            "/api/monitors/echo/results?since=yesterday",
            'invalid since "yesterday": expected Unix seconds or an ISO 8601 time\n',
        ),
        ("/api/monitors/echo/results?limit=0", 'invalid limit "0": expected 1 to 10000\n'),
    ]
    for path, message in cases:
        status, _, body = agent.get(path)
        assert (status, body) == (400, message)


def test_probe_like_blackbox_exporter(
    servers: Servers, prober: AgentProcess, prober_dir: Path
) -> None:
    agent = prober
    status, _, body = agent.get(f"/probe?target={servers.ws}/&module=ws_echo")
    assert status == 200
    samples = samples_of(body)
    assert value(samples, "probe_success") == 1
    assert value(samples, "probe_websocket_status_code") == 101
    assert not any("monitor" in dict(labels) for _, labels in samples)
    assert not any(name.startswith("wsprobe_monitor_runs") for name, _ in samples)

    _, _, failed = agent.get(f"/probe?target={servers.ws}/binary&module=ws_echo")
    assert value(samples_of(failed), "probe_success") == 0
    assert value(samples_of(failed), "wsprobe_monitor_status") == 2

    port = servers.ws.rsplit(":", 1)[1]
    _, _, scripted = agent.get(f"/probe?target={servers.ws}/&module=scripted")
    assert value(samples_of(scripted), "wsprobe_monitor_value") == int(port)

    _, _, scripted_debug = agent.get(f"/probe?target={servers.ws}/&module=scripted&debug=true")
    assert f"running script {prober_dir / 'target.lua'} (timeout 5s)" in scripted_debug
    assert f"probing\t{servers.ws}/\n" in scripted_debug
    assert "WARN about to return\n" in scripted_debug
    assert f"OK: scripted: {port}\n" in scripted_debug

    status, headers, debug = agent.get(
        f"/probe?target={servers.ws}/binary&module=ws_echo&debug=true"
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert debug.startswith(f"Logs for the probe of {servers.ws}/binary with module ws_echo:\n")
    # The module's message is the configuration's: its size only.
    assert f"sending 4 characters to {servers.ws}/binary (timeout 5s)" in debug
    assert '"ping"' not in debug
    assert "Probe failed: CRITICAL - ws binary messages not supported" in debug
    assert "Metrics that would have been returned:\n# HELP probe_success" in debug
    assert "\nprobe_success 0.0\n" in debug


def test_probe_honours_the_scrape_timeout(servers: Servers, prober: AgentProcess) -> None:
    status, _, body = prober.get(
        f"/probe?target={servers.ws}/silent&module=ws_echo&debug=true",
        {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
    )
    assert status == 200
    # The module allows 5 s; the scrape allows 1.5 s, less 0.5 s for the answer.
    assert "(timeout 1s)" in body
    assert "Probe failed: CRITICAL - no response from web socket (timed out)" in body


@pytest.mark.parametrize(
    ("query", "headers", "message"),
    [
        ("module=ws_echo", {}, "missing parameter target"),
        ("target=ws://127.0.0.1:9/", {}, "missing parameter module"),
        ("target=ws://127.0.0.1:9/&module=nope", {}, 'unknown module "nope"'),
        (
            "target=http://127.0.0.1:9/&module=ws_echo",
            {},
            'invalid url "http://127.0.0.1:9/": scheme must be ws or wss',
        ),
        ("target=ws://&module=ws_echo", {}, 'invalid url "ws://": missing host'),
        (
            "target=ws://127.0.0.1:9/&module=ws_echo",
            {"X-Prometheus-Scrape-Timeout-Seconds": "soon"},
            'invalid X-Prometheus-Scrape-Timeout-Seconds "soon": expected a positive number',
        ),
        (
            "target=ws://127.0.0.1:9/&module=ws_echo",
            {"X-Prometheus-Scrape-Timeout-Seconds": "0"},
            'invalid X-Prometheus-Scrape-Timeout-Seconds "0": expected a positive number',
        ),
        ("target=ws://127.0.0.1:9/&module=no%0Apes", {}, 'unknown module "no\\npes"'),
    ],
)
def test_probe_refuses_with_one_line(
    query: str, headers: dict[str, str], message: str, prober: AgentProcess
) -> None:
    status, _, body = prober.get(f"/probe?{query}", headers)
    assert (status, body) == (400, message + "\n")


def test_sighup_reloads_and_keeps_the_old_config_when_broken(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    def config(*names: str, interval: str = "0.2s") -> str:
        entries = "".join(
            f"  - {{name: {name}, url: '{servers.ws}/', interval: {interval}}}\n" for name in names
        )
        return f"monitors:\n{entries}"

    path = write_config(tmp_path, config("a", "b"))
    agent = start(agents, path, tmp_path / "state")

    def monitors() -> set[str]:
        return {
            dict(labels)["monitor"]
            for name, labels in agent.metrics()
            if name == "wsprobe_monitor_status"
        }

    wait_for(lambda: monitors() == {"a", "b"}, 30, "a and b")
    path.write_text(config("a", "c"))
    agent.signal(signal.SIGHUP)
    agent.wait_for_log(r"reloaded: 2 monitors \(1 started, 1 stopped\)")
    wait_for(lambda: monitors() == {"a", "c"}, 30, "a and c, without b")

    path.write_text(config("a", "d", interval="fast"))
    agent.signal(signal.SIGHUP)
    line = agent.wait_for_log("reload failed")
    assert line.endswith(
        "wsprobe agent: reload failed, keeping the running configuration: "
        'monitors[0].interval: expected a duration like 30s, got "fast"'
    )
    samples = agent.metrics()
    assert value(samples, "wsprobe_agent_config_last_reload_successful") == 0
    assert value(samples, "wsprobe_agent_config_reloads_total", result="failure") == 1
    assert value(samples, "wsprobe_agent_config_reloads_total", result="success") == 1
    runs = value(samples, "wsprobe_monitor_runs_total", monitor="c", result="ok") or 0
    # The old configuration goes on running.
    wait_for(
        lambda: (
            (value(agent.metrics(), "wsprobe_monitor_runs_total", monitor="c", result="ok") or 0)
            > runs
        ),
        30,
        "c to run again",
    )
    assert monitors() == {"a", "c"}
    assert agent.process.poll() is None


def test_restart_keeps_history_and_sigterm_exits_zero(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    path = write_config(
        tmp_path,
        f"monitors:\n  - {{name: echo, url: '{servers.ws}/', interval: 0.2s}}\n"
        f"  - {{name: slow, url: '{servers.ws}/delay', interval: 0.2s}}\n",
    )
    state = tmp_path / "state"
    delayed = DELAYED[0]
    first = start(agents, path, state)
    wait_for(lambda: len(first.json("/api/monitors/echo/results")["results"]) >= 3, 60, "results")

    # Stop while the slow monitor's check is in flight (the test server holds its reply
    # for 1 s): it is allowed to finish.
    def slow_in_flight() -> bool:
        # A check the server holds beyond those recorded (another test's held reply
        # may still be waiting: counted from this test's start): it ends recorded.
        recorded = len(first.json("/api/monitors/slow/results")["results"])
        return recorded >= 1 and DELAYED[0] - delayed > recorded

    wait_for(slow_in_flight, 60, "a check in flight")
    before = first.json("/api/monitors/echo/results")["results"]
    assert first.stop() == 0
    assert first.lines[-1].endswith("wsprobe agent: stopped")
    assert not any("still running" in line for line in first.lines)

    with sqlite3.connect(state / "wsprobe.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        slow = db.execute("SELECT count(*) FROM agent_results WHERE monitor = 'slow'").fetchone()
        assert slow[0] >= 2

    path.write_text(path.read_text().replace("0.2s", "1h"))
    second = start(agents, path, state)
    after = second.json("/api/monitors/echo/results")["results"]
    assert after[: len(before)] == before
    listing = second.json("/api/monitors")["monitors"]
    # Before its first run here, a monitor shows its last result from history.
    assert listing[0]["last"] == after[-1]
    assert listing[0]["counts"] == {}
    assert second.stop() == 0


def test_shards_split_the_monitors_exactly_once(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    names = [f"m{index}" for index in range(20)]
    entries = "".join(f"  - {{name: {name}, url: '{servers.ws}/'}}\n" for name in names)
    path = write_config(tmp_path, f"defaults: {{interval: 1h}}\nmonitors:\n{entries}")
    owned = []
    for index in range(2):
        agent = start(agents, path, tmp_path / f"state{index}", "--shard", f"{index}/2")
        agent.wait_for_log(rf"monitors, shard {index}/2\)")
        listing = agent.json("/api/monitors")
        assert listing["shard"] == f"{index}/2"
        owned.append({monitor["name"] for monitor in listing["monitors"]})
        assert owned[-1] == {name for name in names if shard_of(name, 2) == index}
    assert owned[0]
    assert owned[1]
    assert owned[0] | owned[1] == set(names)
    assert not owned[0] & owned[1]


@pytest.mark.parametrize(
    ("config", "flags", "code", "message"),
    [
        (
            "monitors:\n  - {name: a, url: 'ws://127.0.0.1:9/', interval: fast}\n",
            [],
            2,
            'wsprobe agent: agent.yaml: monitors[0].interval: expected a duration like 30s, got "fast"',
        ),
        (
            "monitors: []\n",
            ["--shard", "2/2"],
            2,
            'wsprobe agent: invalid --shard "2/2": I must be 0 to N-1',
        ),
        (
            "monitors: []\n",
            ["--shard", "x"],
            2,
            'wsprobe agent: invalid --shard "x": expected I/N, like 0/2',
        ),
        (
            "monitors: []\n",
            ["--listen", "nowhere"],
            2,
            'wsprobe agent: --listen: expected HOST:PORT, got "nowhere"',
        ),
    ],
)
def test_start_errors(
    config: str, flags: list[str], code: int, message: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    path = write_config(tmp_path, config)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsprobe",
            "agent",
            path.name,
            "--state-dir",
            str(tmp_path),
            *flags,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (code, message + "\n")


def test_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    path = write_config(tmp_path, "monitors: []\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "wsprobe",
                "agent",
                path.name,
                "--listen",
                f"127.0.0.1:{port}",
                "--state-dir",
                str(tmp_path),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert (done.returncode, done.stderr) == (
        1,
        f"wsprobe agent: cannot listen on 127.0.0.1:{port}: address already in use\n",
    )


def test_sigterm_cuts_a_check_that_outlasts_the_grace(
    servers: Servers, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    path = write_config(
        tmp_path,
        f"monitors:\n  - {{name: silent, url: '{servers.ws}/silent', interval: 0.2s, timeout: 60s}}\n",
    )
    agent = start(agents, path, tmp_path / "state")
    wait_for(
        lambda: value(agent.metrics(), "wsprobe_agent_checks_in_flight") == 1, 30, "in flight"
    )
    started = time.monotonic()
    assert agent.stop() == 0
    # 5 s of grace, not the check's 60 s; generous bound for a loaded machine.
    assert time.monotonic() - started < 30
    assert any(line.endswith("stopped 1 checks still running after 5s") for line in agent.lines)
    assert agent.lines[-1].endswith("wsprobe agent: stopped")
