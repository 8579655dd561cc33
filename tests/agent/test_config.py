"""The agent's configuration, sharding and scheduling, in process (no network)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wsprobe.agent.budget import Budget
from wsprobe.agent.config import (
    ConfigError,
    Monitor,
    PageSettings,
    load_config,
    parse_config,
    parse_duration,
)
from wsprobe.agent.outcome import Outcome, State
from wsprobe.agent.scheduler import Scheduler, offset_of
from wsprobe.agent.sharding import Shard, ShardError, shard_of

URL = "ws://127.0.0.1:9/"


CREDENTIALS = (
    "a module that sends credentials needs targets: (the URLs a caller may name), "
    "or send_credentials_to_any_target: true"
)


def monitor(extra: str = "", name: str = "a") -> str:
    return f"monitors:\n  - {{name: {name}, url: '{URL}'{extra}}}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "monitors:\n  - {name: a, url: 'ws://x/'}\n  - {name: b, url: 'ws://x/'}\n"
            "  - {name: c, url: 'ws://x/', interval: fast}\n",
            'monitors[2].interval: expected a duration like 30s, got "fast"',
        ),
        (
            monitor(", interval: 0s"),
            'monitors[0].interval: expected a positive duration, got "0s"',
        ),
        (monitor(", interval: -5"), "monitors[0].interval: expected a positive duration, got -5"),
        (
            monitor(", interval: true"),
            "monitors[0].interval: expected a duration like 30s, got true",
        ),
        (
            monitor(", timeout: 10 s"),
            'monitors[0].timeout: expected a duration like 30s, got "10 s"',
        ),
        (
            "defaults: {interval: often}\n",
            'defaults.interval: expected a duration like 30s, got "often"',
        ),
        ("defaults: {retries: 3}\n", "defaults.retries: unknown field"),
        ("monitor: []\n", "monitor: unknown field"),
        ("- a\n- b\n", "(top level): expected a mapping, got a list"),
        ("monitors: {a: 1}\n", "monitors: expected a list, got a mapping"),
        ("monitors:\n  - just text\n", "monitors[0]: expected a mapping, got text"),
        ("monitors:\n  - {url: 'ws://x/'}\n", "monitors[0].name: required"),
        (
            "monitors:\n  - {name: 'a b', url: 'ws://x/'}\n",
            "monitors[0].name: expected letters, digits, '.', '_' or '-' (at most 128), got \"a b\"",
        ),
        (
            "monitors:\n  - {name: 7, url: 'ws://x/'}\n",
            "monitors[0].name: expected letters, digits, '.', '_' or '-' (at most 128), got 7",
        ),
        (
            monitor() + "  - {name: a, url: 'ws://y/'}\n",
            'monitors[1].name: "a" is already monitors[0]',
        ),
        ("monitors:\n  - {name: a}\n", "monitors[0]: needs exactly one of url and script"),
        (
            "monitors:\n  - {name: a, url: 'ws://x/', script: x.lua}\n",
            "monitors[0]: needs exactly one of url and script",
        ),
        (
            "monitors:\n  - {name: a, url: 'http://x/'}\n",
            'monitors[0].url: invalid url "http://x/": scheme must be ws or wss',
        ),
        (
            "monitors:\n  - {name: a, url: 5}\n",
            "monitors[0].url: expected a ws:// or wss:// URL, got 5",
        ),
        (monitor(", colour: red"), "monitors[0].colour: unknown field"),
        (monitor(", send: [1]"), "monitors[0].send: expected text, got [1]"),
        (
            monitor(", expect: {regex: '('}"),
            "monitors[0].expect.regex: invalid regular expression: missing ): (",
        ),
        (monitor(", expect: {contains: 5}"), "monitors[0].expect.contains: expected text, got 5"),
        (monitor(", expect: {within: 5}"), "monitors[0].expect.within: unknown field"),
        (
            monitor(", expect: {max_seconds: fast}"),
            'monitors[0].expect.max_seconds: expected a positive number of seconds, got "fast"',
        ),
        (
            monitor(", expect: {warn_seconds: 0}"),
            "monitors[0].expect.warn_seconds: expected a positive number of seconds, got 0",
        ),
        (
            monitor(", expect: {cert_warn_days: 1.5}"),
            "monitors[0].expect.cert_warn_days: expected a whole number of days, got 1.5",
        ),
        (
            monitor(", expect: {json: [1]}"),
            "monitors[0].expect.json: expected a mapping, got a list",
        ),
        (monitor(", labels: {monitor: x}"), "monitors[0].labels.monitor: reserved by the agent"),
        (
            monitor(", labels: {'bad-name': x}"),
            'monitors[0].labels: "bad-name" is not a Prometheus label name',
        ),
        (
            monitor(", labels: {__x: x}"),
            'monitors[0].labels: "__x" is not a Prometheus label name',
        ),
        (monitor(", labels: {team: [a]}"), 'monitors[0].labels.team: expected text, got ["a"]'),
        (monitor(", insecure: maybe"), "monitors[0].insecure: expected true or false, got string"),
        (monitor(", env: [A]"), "monitors[0].env: only a scripted check reads the environment"),
        (
            "monitors:\n  - {name: a, script: missing.lua}\n",
            "monitors[0].script: no such file: {base}/missing.lua",
        ),
        (
            "monitors:\n  - {name: a, script: ok.lua, send: x}\n",
            "monitors[0].send: a scripted check has no send or expect",
        ),
        (
            "monitors:\n  - {name: a, script: ok.lua, env: A}\n",
            'monitors[0].env: expected a list of variable names, got "A"',
        ),
        ("modules:\n  m: {send: 5}\n", "modules.m.send: expected text, got 5"),
        ("modules:\n  m: {url: 'ws://x/'}\n", "modules.m.url: unknown field"),
        (
            "modules:\n  m: {timeout: never}\n",
            'modules.m.timeout: expected a duration like 30s, got "never"',
        ),
        ("modules: [a]\n", "modules: expected a mapping, got a list"),
        ("listen: 9814\n", "listen: expected HOST:PORT, got 9814"),
        ("listen: 'localhost'\n", 'listen: expected HOST:PORT, got "localhost"'),
        ("listen: 'localhost:70000'\n", 'listen: expected HOST:PORT, got "localhost:70000"'),
        ("concurrency: 0\n", "concurrency: expected a whole number from 1 to 10000, got 0"),
        (
            "concurrency: 10001\n",
            "concurrency: expected a whole number from 1 to 10000, got 10001",
        ),
        ("workers: 0\n", "workers: expected a whole number from 1 to 64, got 0"),
        ("workers: 65\n", "workers: expected a whole number from 1 to 64, got 65"),
        ("workers: two\n", 'workers: expected a whole number from 1 to 64, got "two"'),
        ("workers: true\n", "workers: expected a whole number from 1 to 64, got true"),
        (monitor(", interval: 5ms"), 'monitors[0].interval: expected 10ms to 7d, got "5ms"'),
        (monitor(", interval: 8d"), 'monitors[0].interval: expected 10ms to 7d, got "8d"'),
        (
            monitor(", interval: " + "9" * 5000 + "s"),
            'monitors[0].interval: expected a duration like 30s, got "' + "9" * 99 + "…",
        ),
        (
            "defaults: {interval: 0.001}\n",
            "defaults.interval: expected 10ms to 7d, got 0.001",
        ),
        (
            monitor(", expect: {regex: '(?=a)'}"),
            "monitors[0].expect.regex: invalid regular expression: invalid perl operator: (?=",
        ),
        (
            'monitors:\n  - {name: "web\\n", url: "ws://x/"}\n',
            "monitors[0].name: expected letters, digits, '.', '_' or '-' (at most 128), "
            'got "web\\n"',
        ),
        (
            monitor(', labels: {team: "core\\n"}'),
            "monitors[0].labels.team: expected one line of printable text (at most 1024), "
            'got "core\\n"',
        ),
        (
            monitor(', labels: {"team\\n": core}'),
            'monitors[0].labels: "team\\n" is not a Prometheus label name',
        ),
        (
            monitor(", interval: 1s, interval: 2s"),
            'invalid YAML at line 2 column 55: duplicate key "interval"',
        ),
        ("workers: 1\nworkers: 2\n", 'invalid YAML at line 2 column 1: duplicate key "workers"'),
        (
            "modules:\n  m: {headers: {Authorization: Bearer x}}\n",
            f"modules.m.headers: {CREDENTIALS}",
        ),
        ("modules:\n  m: {script: ok.lua, env: [API_TOKEN]}\n", f"modules.m.env: {CREDENTIALS}"),
        (
            "modules:\n  m: {targets: '('}\n",
            "modules.m.targets: invalid regular expression: missing ): (",
        ),
        (
            "modules:\n  m: {targets: []}\n",
            "modules.m.targets: expected a pattern or a list of 1 to 100, got []",
        ),
        (
            "modules:\n  m: {targets: ['ws://a/.*', 5]}\n",
            "modules.m.targets[1]: expected text, got 5",
        ),
        (
            "modules:\n  m: {send_credentials_to_any_target: yes please}\n",
            'modules.m.send_credentials_to_any_target: expected true or false, got "yes please"',
        ),
        (
            "modules:\n  m: {concurrency: 101}\n",
            "modules.m.concurrency: expected a whole number from 1 to 100, got 101",
        ),
        ("redact_query: sig\n", 'redact_query: expected a list of parameter names, got "sig"'),
        ("redact_query: ['']\n", 'redact_query: expected a list of parameter names, got [""]'),
        ("retention: forever\n", 'retention: expected a duration like 30s, got "forever"'),
        ("page: [team]\n", "page: expected a mapping, got a list"),
        ("page: {group: team}\n", "page.group: unknown field"),
        ("page: {group_by: 'a-b'}\n", 'page.group_by: "a-b" is not a Prometheus label name'),
        (
            "page: {group_by: __name__}\n",
            'page.group_by: "__name__" is not a Prometheus label name',
        ),
        ("page: {group_by: 3}\n", "page.group_by: 3 is not a Prometheus label name"),
        ("page: {refresh: 500ms}\n", 'page.refresh: expected 1s to 1h, got "500ms"'),
        ("page: {refresh: 2h}\n", 'page.refresh: expected 1s to 1h, got "2h"'),
        ("page: {refresh: soon}\n", 'page.refresh: expected a duration like 30s, got "soon"'),
        (
            "monitors: [\n",
            "invalid YAML at line 2 column 1: did not find expected node content",
        ),
        (
            "a: !!python/object:os.system x\n",
            "invalid YAML at line 1 column 4: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
        ("a: &x [*x]\n", "invalid YAML: an alias refers to a collection that contains it"),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "invalid YAML: nested deeper than 50 levels"),
        pytest.param(
            "a: " + "[" * 5000 + "]" * 5000 + "\n",
            "invalid YAML at line 1 column 1003: exceeded maximum nesting depth",
            marks=pytest.mark.slow,
        ),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            ),
            "invalid YAML: more than 1000000 values once aliases expand",
        ),
    ],
)
def test_config_errors_name_the_field(text: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "ok.lua").write_text("return 1\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base=tmp_path)
    assert str(caught.value) == message.format(base=tmp_path)


def test_a_complete_config(tmp_path: Path) -> None:
    (tmp_path / "monitors").mkdir()
    (tmp_path / "monitors" / "login.lua").write_text("return 1\n")
    path = tmp_path / "agent.yaml"
    path.write_text(
        """
listen: 127.0.0.1:9814
defaults: {interval: 30s, timeout: 10s}
monitors:
  - name: echo
    url: ws://127.0.0.1:8765/
    send: ping
    expect: {contains: ping, regex: "^p", json: {status: ok, data: {n: 1}}, max_seconds: 0.5}
    interval: 5s
    labels: {team: core}
  - name: login-flow
    script: monitors/login.lua
    interval: 1m
    env: [API_TOKEN]
modules:
  ws_echo: {send: ping, expect: {contains: ping}, timeout: 5s}
"""
    )
    config = load_config(path)
    echo, login = config.monitors
    assert (echo.name, echo.url, echo.interval, echo.probe.timeout) == (
        "echo",
        "ws://127.0.0.1:8765/",
        5,
        10,
    )
    assert echo.labels == (("team", "core"),)
    assert echo.probe.expect.json_fields == (("status", "ok"), ("data.n", 1))
    assert echo.probe.expect.critical is not None
    assert echo.probe.expect.critical.alerts(0.6)
    assert not echo.probe.expect.critical.alerts(0.4)
    assert login.probe.script == str(tmp_path / "monitors" / "login.lua")
    assert (login.interval, login.probe.env) == (60, ("API_TOKEN",))
    assert config.modules["ws_echo"].probe.timeout == 5
    assert config.retention == 86400
    assert config.workers == min(2, os.cpu_count() or 1)
    assert parse_config("workers: 3\n", base=tmp_path).workers == 3
    assert config.page == PageSettings(group_by=None, refresh=10)
    page = parse_config("page: {group_by: team, refresh: 1m}\n", base=tmp_path).page
    assert page == PageSettings(group_by="team", refresh=60)


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert str(caught.value) == f"cannot read {tmp_path / 'nope.yaml'}: no such file or directory"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m", 60),
        ("500ms", 0.5),
        ("2h", 7200),
        ("7d", 604800),
        ("0.2s", 0.2),
        (5, 5),
        (1.5, 1.5),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_shards_are_stable_and_consistent() -> None:
    names = [f"monitor-{index}" for index in range(3000)]
    two = {name: shard_of(name, 2) for name in names}
    three = {name: shard_of(name, 3) for name in names}
    # Adding a third shard moves only the monitors the new shard wins.
    moved = [name for name in names if two[name] != three[name]]
    assert all(three[name] == 2 for name in moved)
    assert 800 < len(moved) < 1200
    assert 1300 < sum(1 for shard in two.values() if shard == 0) < 1700
    # Stable across processes, machines and releases: a fleet relies on it.
    assert [shard_of(f"m{index}", 4) for index in range(8)] == [1, 3, 1, 1, 3, 2, 2, 2]
    assert Shard.parse("1/3") == Shard(1, 3)
    assert Shard().owns("anything")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/3", 'invalid --shard "3/3": I must be 0 to N-1'),
        ("0/0", 'invalid --shard "0/0": N must be 1 to 1024'),
        ("0/1025", 'invalid --shard "0/1025": N must be 1 to 1024'),
        ("0/" + "9" * 5000, 'invalid --shard "0/999999999999999999…": N must be 1 to 1024'),
        ("9" * 5000 + "/2", 'invalid --shard "99999999999999999999…": I must be 0 to N-1'),
        ("0002/0002", 'invalid --shard "0002/0002": I must be 0 to N-1'),
        ("1", 'invalid --shard "1": expected I/N, like 0/2'),
        ("-1/2", 'invalid --shard "-1/2": expected I/N, like 0/2'),
    ],
)
def test_bad_shards(text: str, message: str) -> None:
    with pytest.raises(ShardError) as caught:
        Shard.parse(text)
    assert str(caught.value) == message


def test_offsets_are_stable_and_within_the_interval() -> None:
    offsets = [offset_of(f"m{index}", 10) for index in range(200)]
    assert all(0 <= offset < 10 for offset in offsets)
    assert offsets == [offset_of(f"m{index}", 10) for index in range(200)]
    assert len({round(offset, 3) for offset in offsets}) > 150  # spread, not a herd


def test_scheduler_never_overlaps_a_monitor_and_counts_skips() -> None:
    config = parse_config(
        "monitors:\n"
        + "".join(f"  - {{name: m{i}, url: '{URL}', interval: 0.05s}}\n" for i in range(6)),
        base=Path("."),
    )
    running: dict[str, int] = {}
    peak = {"monitor": 0, "total": 0}
    outcomes: list[str] = []
    skips: dict[str, int] = {}

    async def scenario() -> None:
        async def run(monitor: Monitor) -> Outcome:
            name = monitor.name
            running[name] = running.get(name, 0) + 1
            peak["monitor"] = max(peak["monitor"], running[name])
            peak["total"] = max(peak["total"], sum(running.values()))
            await asyncio.sleep(0.12)  # longer than the interval: slots are missed
            running[name] -= 1
            return Outcome(time.time(), State.OK, 0.12)

        scheduler = Scheduler(
            run=run,
            record=lambda monitor, _: outcomes.append(monitor.name),
            skipped=lambda monitor, count: skips.__setitem__(
                monitor.name, skips.get(monitor.name, 0) + count
            ),
            budget=Budget(2),
            unit=lambda _component: contextlib.nullcontext(),
        )
        scheduler.update(config.monitors)
        deadline = time.monotonic() + 30
        while len(outcomes) < 12 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert await scheduler.stop(5) == 0

    asyncio.run(scenario())
    assert len(outcomes) >= 12
    assert peak["monitor"] == 1
    assert peak["total"] <= 2
    assert sum(skips.values()) >= 1


def test_the_example_config_is_valid() -> None:
    # The README shows this file as the complete example: it must stay loadable.
    config = load_config(Path(__file__).resolve().parents[2] / "examples" / "agent.yaml")
    assert [monitor.name for monitor in config.monitors] == [
        "echo",
        "greeting",
        "slow-echo",
        "latency-script",
    ]
    assert sorted(config.modules) == ["scripted", "ws_echo"]


# Whatever YAML an operator (or an attacker with write access to a config) produces, the
# only failure is a ConfigError naming a field: never another exception.
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_FIELDS = st.sampled_from(
    [
        "name",
        "url",
        "script",
        "send",
        "expect",
        "interval",
        "timeout",
        "labels",
        "env",
        "contains",
        "regex",
        "json",
        "max_seconds",
        "cafile",
        "insecure",
        "headers",
        "x",
    ]
)
_VALUES = st.recursive(
    _SCALARS | st.just("ws://127.0.0.1:9/") | st.just("5s"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_FIELDS, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "monitors",
                "modules",
                "defaults",
                "listen",
                "retention",
                "concurrency",
                "workers",
                "page",
            ]
        ),
        _VALUES | st.lists(st.dictionaries(_FIELDS, _VALUES, max_size=6), max_size=3),
        max_size=4,
    )
)
def test_any_document_is_valid_or_a_config_error(document: dict[str, object]) -> None:
    text = yaml.safe_dump(document)
    message = "valid"
    try:
        parse_config(text, base=Path("/nonexistent"))
    except ConfigError as exc:
        message = str(exc)
    assert message
    assert "\n" not in message


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=12))
def test_every_name_has_exactly_one_shard(name: str, count: int) -> None:
    owners = [index for index in range(count) if Shard(index, count).owns(name)]
    assert owners == [shard_of(name, count)]


SUBDOMAINS = r"ws://[^/]*\.ok\.example(:\d+)?/.*"


@pytest.mark.parametrize(
    ("pattern", "target", "allowed"),
    [
        (SUBDOMAINS, "ws://a.ok.example/", True),
        (SUBDOMAINS, "ws://a.ok.example:8080/x?y=1", True),
        (SUBDOMAINS, "ws://evil.test/", False),
        # A query right after the authority cannot stand in for the host's end.
        (SUBDOMAINS, "ws://evil.test?.ok.example/", False),
        (SUBDOMAINS, "ws://evil.test:80?.ok.example:1/", False),
        (SUBDOMAINS, "ws://evil.test/?.ok.example/", False),
        (SUBDOMAINS, "ws://a.ok.example@evil.test/", False),
        (r"ws://10\.0\.0\.1:8080", "ws://10.0.0.1:8080", True),
        (r"ws://10\.0\.0\.1:8080/\?x=1", "ws://10.0.0.1:8080?x=1", True),
        (r"ws://10\.0\.0\.1:8080\?x=1", "ws://10.0.0.1:8080?x=1", False),
        (r"ws://h/.*", "WS://h/", False),
        (r"[a-z]+", "plain", True),
    ],
)
def test_a_modules_targets_match_where_the_target_points(
    pattern: str, target: str, allowed: bool
) -> None:
    text = f"modules:\n  m:\n    targets: '{pattern}'\n"
    module = parse_config(text, base=Path(".")).modules["m"]
    assert module.allows(target) is allowed
