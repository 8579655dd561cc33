"""Monsta's globals and modules in scripts: contracts the corpus does not pin."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import HttpServers, Run, Servers
from tests.support.lua import run_as_one_run, run_lua
from wsprobe.cli import main

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ARGUMENT_ERRORS = [
    ("sleep(-1)", "bad argument #1 to 'sleep' (non-negative number expected, got -1)"),
    ("sleep('soon')", "bad argument #1 to 'sleep' (non-negative number expected, got string)"),
    (
        "with_timeout('x', print)",
        "bad argument #1 to 'with_timeout' (non-negative number expected, got string)",
    ),
    ("with_timeout(10, 'f')", "bad argument #2 to 'with_timeout' (function expected, got string)"),
    ("diff('a', 1)", "bad argument #1 to 'diff' (number expected, got string)"),
    ("signal(nil)", "bad argument #1 to 'signal' (string expected, got nil)"),
    ("store.put(nil, 1)", "bad argument #1 to 'store.put' (string expected, got nil)"),
    ("store.get_global({})", "bad argument #1 to 'store.get_global' (string expected, got table)"),
    ("store.put('k', print)", "store.put: cannot encode a function"),
    (
        "store.put('k', {1, x = 2})",
        "store.put: table keys must be all strings or 1..n with no gaps",
    ),
    ("store.put(string.rep('k', 1025), 1)", "store.put: key longer than 1024 characters"),
    ("cache.put('k', print, 5)", "cache.put: cannot encode a function"),
    ("cache.put('k', 1)", "cache.put: ttl expected a number of seconds, got nil"),
    ("cache.get(nil)", "bad argument #1 to 'cache.get' (string expected, got nil)"),
    ("http.get(nil)", "bad argument #1 to 'http.get' (string expected, got nil)"),
    (
        "http.request('GET', 'http://x/', {})",
        "bad argument #3 to 'http.request' (string expected, got table)",
    ),
    (
        "http.post('http://x/', 'b', 'h')",
        "bad argument #3 to 'http.post' (table expected, got string)",
    ),
    ("http.get('ftp://x/')", 'invalid url "ftp://x/": scheme must be http or https'),
    ("http.get('http://x/', nil, nil, {colour = 1})", "invalid option colour: unknown option"),
    (
        "http.get('http://x/', nil, {1, 2})",
        "invalid option headers: expected a table of name = value",
    ),
    ("time.parse('2024-01-15')", 'time.parse: invalid RFC 3339 date "2024-01-15"'),
    ("string.split('a', nil)", "bad argument #2 to 'split' (string expected, got nil)"),
    ("table.slice(nil)", "bad argument #1 to 'slice' (table expected, got nil)"),
    ("math.pow('a', 2)", "bad argument #1 to 'pow' (number expected, got string)"),
]


@pytest.fixture(scope="module")
def argument_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bool, list[str]]]:
    """Every call of the table made by a script of one run: by call, whether its
    script succeeded and the lines it printed."""
    calls = [call for call, _ in ARGUMENT_ERRORS]
    sources = [
        f"local ok, err = pcall(function() return {call} end)\nprint(ok, type(err), err)"
        for call in calls
    ]
    folder = tmp_path_factory.mktemp("argument-errors")
    ran = run_as_one_run(sources, folder, state_dir=folder / "state")
    return dict(zip(calls, ran, strict=True))


@pytest.mark.parametrize(("call", "message"), ARGUMENT_ERRORS, ids=[c for c, _ in ARGUMENT_ERRORS])
def test_errors_are_plain_strings(
    argument_errors: dict[str, tuple[bool, list[str]]], call: str, message: str
) -> None:
    assert argument_errors[call] == (True, [f"false\tstring\t{message}"])


def test_require_gives_every_module(run: Run) -> None:
    names = ["ws", "json", "log", "store", "cache", "http", "time", "uuid"]
    source = "\n".join(f"assert(require('{n}') == {n})" for n in names)
    source += "\nprint(pcall(require, 'socket'))"
    code, out, _ = run.lua(source)
    assert (code, out) == (
        0,
        "false\tmodule 'socket' not found (only ws, json, log, store, cache, http, time, uuid)\n",
    )


# --- with_timeout ---


def test_with_timeout_interrupts_calls_in_flight_and_pcall_inside_cannot_catch_it(
    run: Run, servers: Servers
) -> None:
    source = f"""
local caught_inside = false
local started = now()
local ok, err = pcall(with_timeout, 200, function()
  local inner_ok = pcall(ws.send_recv, "{servers.ws}/silent", "x", {{timeout = 5}})
  caught_inside = true
end)
print(ok, err, caught_inside, now() - started < 1)
local session = ws.connect("{servers.ws}/silent")
print(pcall(with_timeout, 100, session.recv, session))
print(pcall(with_timeout, 100, sleep, 3))
"""
    code, out, err = run.lua(source)
    assert (code, out) == (
        0,
        "false\twith_timeout: timed out after 200 ms\tfalse\ttrue\n"
        "false\twith_timeout: timed out after 100 ms\n"
        "false\twith_timeout: timed out after 100 ms\n",
    ), err


def test_nested_timeouts_each_keep_their_own_deadline(run: Run) -> None:
    source = """
local function inner() return with_timeout(50, sleep, 1) end
print(pcall(with_timeout, 2000, inner))
print(pcall(with_timeout, 50, with_timeout, 2000, sleep, 1))
print(with_timeout(1000, function(a, b) sleep(0.01) return a, b, nil end, 1, 2))
print(pcall(with_timeout, 1000, error, "own error", 0))
local co = coroutine.wrap(function() with_timeout(1000, function() coroutine.yield("y") end) return "end" end)
print(co(), co())
"""
    code, out, err = run.lua(source)
    assert (code, out) == (
        0,
        "false\twith_timeout: timed out after 50 ms\n"
        "false\twith_timeout: timed out after 50 ms\n"
        "1\t2\tnil\n"
        "false\town error\n"
        "y\tend\n",
    ), err


# --- signal and the result convention, in records and exit codes ---


def test_records_carry_status_value_and_signal(run: Run, tmp_path: Path) -> None:
    scripts = {
        "warn.lua": 'return {value = 5, status = "MetricWarning"}',
        "crit.lua": 'return {status = "MetricCritical"}',
        "plain.lua": "return {1, 2}",
        "typo.lua": 'return {value = 1, status = "MetricWarn"}',
        "repeat.lua": 'signal("RepeatPrevValue")',
        "caught.lua": 'local ok, s = pcall(signal, "X"); return tostring(s)',
        "syntax.lua": "x = = 1",
        "fails.lua": "error('boom')",
    }
    paths = [run.script(source, name) for name, source in scripts.items()]
    code, out, _ = run("--json", *paths, str(tmp_path / "missing.lua"))
    assert code == 1
    records = {r["name"]: r for r in map(json.loads, out.splitlines())}
    seen = {
        name: (r["ok"], r["status"], r["value"], r["signal"], r["error"])
        for name, r in records.items()
    }
    assert seen == {
        "warn.lua": (True, "warning", 5, None, None),
        "crit.lua": (True, "critical", None, None, None),
        "plain.lua": (True, "ok", [1, 2], None, None),
        "typo.lua": (
            False,
            "unknown",
            1,
            None,
            'unknown status "MetricWarn" (MetricOk, MetricWarning or MetricCritical)',
        ),
        "repeat.lua": (True, "unknown", None, "RepeatPrevValue", None),
        "caught.lua": (True, "ok", "signal X", None, None),
        "syntax.lua": (False, "unknown", None, None, "syntax.lua:1: unexpected symbol near '='"),
        "fails.lua": (False, "critical", None, None, "fails.lua:1: boom"),
        "missing.lua": (
            False,
            "unknown",
            None,
            None,
            "missing.lua: cannot read script: no such file or directory",
        ),
    }


def test_execution_done_is_called_by_signal(run: Run) -> None:
    source = 'function _execution_done() print("done called") end\nsignal("RepeatPrevValue")'
    assert run.lua(source) == (0, "done called\nsignal RepeatPrevValue\n", "")


# --- store across runs, EXEC_IDENT, log.set_ident ---


def test_store_survives_runs_and_is_namespaced_per_monitor(run: Run, tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    counter = run.script(
        "local n = (store.get('n') or 0) + 1\nstore.put('n', n)\nreturn n", "counter.lua"
    )
    other = run.script(
        "return {store.get('n') == nil, (store.get_global('counter.lua:n'))}", "other.lua"
    )
    assert run(*state, counter)[:2] == (0, "1\n")
    assert run(*state, counter)[:2] == (0, "2\n")
    assert run(*state, other)[:2] == (0, "[true,2]\n")
    assert (tmp_path / "state" / "wsprobe.db").is_file()


def test_log_set_ident_names_the_lines(run: Run) -> None:
    code, _, err = run.lua('log.set_ident("monitoramento-cpu")\nlog.info("Iniciando", 1)')
    assert code == 0
    assert re.fullmatch(r"\S+Z INFO check\.lua: \[monitoramento-cpu\] Iniciando 1\n", err), err


# --- wsprobe check --script ---


def check(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_check_script_states_values_and_perfdata(
    run: Run, servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = run.script(
        f'print("two calls")\n'
        f'ws.send_recv("{servers.ws}/", "a")\n'
        f'ws.probe("{servers.ws}/", "b")\n'
        'return {value = {latency = 0.25, users = 3, name = "x", ["a b"] = 1}, '
        'status = "MetricWarning"}',
        "mon.lua",
    )
    code, out = check("--script", script, "--state-dir", str(tmp_path), capsys=capsys)
    first, *rest = out.splitlines()
    assert code == 1
    status, perf = first.split(" | ")
    assert status == (
        'WEBSOCKET WARNING - mon.lua: {"a b":1,"latency":0.25,"name":"x","users":3}'
        " (returned MetricWarning)"
    )
    assert perf.startswith("'a b'=1 latency=0.25 users=3 ws1_time=")
    labels = [item.split("=")[0] for item in perf.split(" ")[4:]]
    for call in ("ws1_", "ws2_"):
        assert [label for label in labels if label.startswith(call)] == [
            f"{call}{phase}" for phase in ("time", "dns", "connect", "upgrade", "reply")
        ]
    assert rest == [
        "two calls",
        '{"status":"MetricWarning","value":{"a b":1,"latency":0.25,"name":"x","users":3}}',
    ]


CHECKS = [
    ("return 42", 0, "WEBSOCKET OK - check.lua: 42 | value=42"),
    (
        'return {value = 1.5, status = "MetricCritical"}',
        2,
        "WEBSOCKET CRITICAL - check.lua: 1.5 (returned MetricCritical) | value=1.5",
    ),
    ("error('boom')", 2, "WEBSOCKET CRITICAL - check.lua:1: boom"),
    ("x = = 1", 3, "WEBSOCKET UNKNOWN - check.lua:1: unexpected symbol near '='"),
    (
        'signal("RepeatPrevValue")',
        3,
        "WEBSOCKET UNKNOWN - check.lua: ended with signal RepeatPrevValue",
    ),
    ("return 'a\\nb'", 0, "WEBSOCKET OK - check.lua: a b"),
    ("return string.rep('x', 300)", 0, "WEBSOCKET OK - check.lua: " + "x" * 200 + "…"),
]


@pytest.mark.parametrize(("source", "code", "line"), CHECKS, ids=[c[0] for c in CHECKS])
def test_check_script_exit_codes(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, code: int, line: str
) -> None:
    script = run.script(source)
    got_code, out = check("--script", script, "--state-dir", str(tmp_path), capsys=capsys)
    assert (got_code, out.splitlines()[0]) == (code, line)


def test_check_script_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert check("ws://x/", "--script", "a.lua", capsys=capsys) == (
        3,
        "WEBSOCKET UNKNOWN - wsprobe check: give a URL or --script FILE, not both\n",
    )
    assert check("--script", str(tmp_path / "nope.lua"), capsys=capsys) == (
        3,
        "WEBSOCKET UNKNOWN - nope.lua: cannot read script: no such file or directory\n",
    )


def test_http_in_a_script_uses_the_run_options(run: Run, http_servers: HttpServers) -> None:
    source = f'return http.get("{http_servers.tls_url}/api/health").body'
    assert run.lua(source, "--cafile", str(http_servers.ca_file))[:2] == (0, "healthy\n")
    code, _, err = run.lua(source, "--timeout", "0.5")
    assert code == 1
    assert "TLS certificate verify failed" in err


# --- the Monsta-style examples of `make demo`, against its service ---


def test_monsta_examples(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo", EXAMPLES / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    service = demo.DemoService()
    try:
        service.start()
    except OSError:
        service.stop()
        pytest.skip(f"port {demo.SERVICE_PORT} is taken on this machine")
    try:
        login = str(EXAMPLES / "monsta" / "01-login-e-websocket.lua")
        alert = str(EXAMPLES / "monsta" / "02-alerta-de-mudanca.lua")
        monkeypatch.setenv("DEMO_PASSWORD", "wrong")
        refused = run("--json", "--env", "DEMO_PASSWORD", login)
        monkeypatch.setenv("DEMO_PASSWORD", demo.PASSWORD)
        logged_in = run("--env", "DEMO_PASSWORD", login)
        state = ["--state-dir", str(tmp_path)]
        first, second = run(*state, alert), run(*state, alert)
        service.version = "2.0.0"
        changed = run("--json", *state, alert)
    finally:
        service.stop()
    record = json.loads(refused[1])
    assert (record["status"], record["value"]) == ("critical", 401)
    assert logged_in[:2] == (
        0,
        'Conectado como\tmonitor\t- eco:\tping\n{"status":"MetricOk","value":"ping"}\n',
    )
    assert first[:2] == (
        0,
        'Primeira execução: versão\t1.0.0\n{"status":"MetricOk","value":"1.0.0"}\n',
    )
    assert re.fullmatch(
        r"Versão\t1\.0\.0\tinalterada desde\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n"
        r'\{"status":"MetricOk","value":"1\.0\.0"\}\n',
        second[1],
    )
    record = json.loads(changed[1])
    assert (record["status"], record["value"]) == ("warning", "2.0.0")
    assert changed[2] == "A versão mudou:\t1.0.0\t->\t2.0.0\n"


def test_store_defaults_to_the_per_user_state_dir(run: Run) -> None:
    # conftest points XDG_STATE_HOME at a temporary directory for the whole session.
    assert run.lua("store.put('k', 1)\nreturn (store.get('k'))")[:2] == (0, "1\n")
    assert (Path(os.environ["XDG_STATE_HOME"]) / "wsprobe" / "wsprobe.db").is_file()


# --- properties of the string and table extensions, checked in Lua ---

TEXT = st.text(alphabet=st.sampled_from("ab ,\t\né"), max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    cases=st.lists(st.tuples(TEXT, TEXT.filter(bool)), min_size=1, max_size=20),
    slices=st.lists(
        st.tuples(st.lists(st.integers(0, 9), max_size=8), st.integers(1, 9), st.integers(0, 9)),
        min_size=1,
        max_size=10,
    ),
)
def test_split_trim_and_slice_against_python(
    cases: list[tuple[str, str]], slices: list[tuple[list[int], int, int]]
) -> None:
    # In this process: the functions are the Lua state's, whatever runs the script.
    source = """
local cases = json.decode([==[CASES]==])
local out = {}
for _, case in ipairs(cases.split) do
  local s, sep = case[1], case[2]
  out[#out + 1] = {string.split(s, sep), string.trim(s)}
end
for _, case in ipairs(cases.slice) do
  local t, first, last = case[1], case[2], case[3]
  if first <= #t and last <= #t and first <= last then
    out[#out + 1] = table.slice(t, first, last)
  else
    out[#out + 1] = json.null
  end
end
return json.encode(out)
""".replace("CASES", json.dumps({"split": cases, "slice": slices}))
    outcome = run_lua(source).outcome
    assert outcome.ok, outcome.error
    assert isinstance(outcome.result, str)
    results = json.loads(outcome.result)
    for (s, sep), (pieces, trimmed) in zip(cases, results, strict=False):
        assert pieces == s.split(sep)
        assert trimmed == s.strip(" \t\n\r\v\f")
    for (t, first, last), got in zip(slices, results[len(cases) :], strict=True):
        if first <= len(t) and last <= len(t) and first <= last:
            assert (got or []) == t[first - 1 : last]


def test_many_scripts_share_the_store_cache_and_http_at_once(
    run: Run, http_servers: HttpServers, tmp_path: Path
) -> None:
    source = f"""
local n = tonumber(EXEC_IDENT:match("%d+"))
local body = http.get("{http_servers.url}/api/health").body
store.put("n", n)
store.put_global("last", n)
cache.put("k" .. n, n, 60)
sleep(0.01)
return {{body, (store.get("n")), cache.get("k" .. n)}}
"""
    paths = [run.script(source, f"m{i:03}.lua") for i in range(150)]
    started = time.monotonic()
    code, out, err = run("--json", "--state-dir", str(tmp_path), *paths)
    assert time.monotonic() - started < 30
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["value"][1] for r in records) == list(range(150))
    assert all(r["value"] == ["healthy", n, n] for r in records for n in [r["value"][1]])
