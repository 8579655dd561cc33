"""The command line: `send`, `check`, `serve`, exit codes and exact output."""

from __future__ import annotations

import datetime
import io
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.support.calls import Capture, cli
from tests.support.net import http_reply, never_answers, unused_port
from tests.support.wire import RawHandler
from wsprobe.cli import EXIT_CODES
from wsprobe.models import Result, Timings
from wsprobe.plugin import Expectations, Range, State, judge

# --- send ---


def test_send_prints_the_reply(servers: Servers, capsys: Capture) -> None:
    assert cli(capsys, "send", servers.ws + "/", "Olá") == (0, "Olá\n", "")


def test_send_reads_stdin(
    servers: Servers, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    assert cli(capsys, "send", servers.ws + "/") == (0, "from stdin\n", "")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"dash")))
    assert cli(capsys, "send", servers.ws + "/", "-") == (0, "dash\n", "")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
    assert cli(capsys, "send", servers.ws + "/") == (
        2,
        "",
        "wsprobe: invalid argument MESSAGE: standard input is not valid UTF-8 text\n",
    )


def test_send_options_reach_the_server(servers: Servers, capsys: Capture) -> None:
    code, out, _ = cli(
        capsys,
        "send",
        servers.subprotocol + "/inspect",
        "x",
        "-H",
        "X-Token: abc",
        "--header",
        "X-Other:2",
        "--origin",
        "https://o.example",
        "--subprotocol",
        "chat.v1",
        "--no-compression",
        "--max-size",
        "100000",
        "--timeout",
        "5",
    )
    seen = json.loads(out)
    assert code == 0
    assert seen["subprotocol"] == "chat.v1"
    assert seen["headers"]["x-token"] == "abc"
    assert seen["headers"]["x-other"] == "2"
    assert seen["headers"]["origin"] == "https://o.example"
    assert "sec-websocket-extensions" not in seen["headers"]


def test_send_tls_options(servers: Servers, capsys: Capture) -> None:
    assert cli(capsys, "send", servers.wss + "/", "a", "--cafile", str(servers.ca_file))[:2] == (
        0,
        "a\n",
    )
    assert cli(capsys, "send", servers.wss + "/", "b", "--insecure")[:2] == (0, "b\n")


def test_send_verbose_prints_facts_on_stderr(servers: Servers, capsys: Capture) -> None:
    code, out, err = cli(
        capsys, "send", "-v", servers.wss + "/", "v", "--cafile", str(servers.ca_file)
    )
    assert (code, out) == (0, "v\n")
    lines = err.splitlines()
    assert (
        lines[0] == f"* connected to 127.0.0.1:{servers.wss.rsplit(':', 1)[1]} for {servers.wss}/"
    )
    assert lines[1] == "* HTTP 101, subprotocol -, close 1000"
    assert re.fullmatch(r"\* certificate expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[2])
    assert re.fullmatch(
        r"\* dns [\d.]+s connect [\d.]+s tls [\d.]+s upgrade [\d.]+s reply [\d.]+s total [\d.]+s",
        lines[3],
    )


def test_send_json(servers: Servers, capsys: Capture) -> None:
    code, out, _ = cli(capsys, "send", "--json", servers.ws + "/", "j")
    facts = json.loads(out)
    assert code == 0
    assert facts["reply"] == "j"
    assert facts["status"] == 101
    assert facts["timings"]["tls"] is None
    timings = facts["timings"]
    phases = [timings[p] for p in ("dns", "connect", "upgrade", "reply")]
    assert all(0 <= p <= timings["total"] for p in phases)
    assert sum(phases) <= timings["total"]


def test_send_json_on_error(servers: Servers, capsys: Capture) -> None:
    code, out, err = cli(capsys, "send", "--json", servers.ws + "/close1008", "x")
    assert (code, err) == (3, "")
    assert json.loads(out) == {
        "url": servers.ws + "/close1008",
        "error": "no response from web socket",
        "exit": 3,
        "phase": "reply",
        "peer": "127.0.0.1:" + servers.ws.rsplit(":", 1)[1],
        "status": 101,
        "subprotocol": None,
        "close_code": 1008,
        "close_reason": "go away",
        "timed_out": False,
    }


@pytest.mark.parametrize(
    ("path", "options", "code", "message"),
    [
        ("/binary", [], 4, "wsprobe: ws binary messages not supported"),
        (
            "/close1008",
            [],
            3,
            "wsprobe: no response from web socket (server closed with 1008 go away)",
        ),
        (
            "/drop",
            [],
            3,
            "wsprobe: no response from web socket (connection closed without a close frame)",
        ),
        ("/silent", ["--timeout", "0.2"], 3, "wsprobe: no response from web socket (timed out)"),
        (
            "/big",
            ["--max-size", "1000"],
            10,
            "wsprobe: receive {url}: reply larger than max_size of 1000 bytes",
        ),
        (
            "/",
            ["--timeout", "x"],
            2,
            'wsprobe: invalid option timeout: "x" is not a number of seconds',
        ),
        (
            "/",
            ["--max-size", "x"],
            2,
            'wsprobe: invalid option max_size: "x" is not a number of bytes',
        ),
        (
            "/",
            ["-H", "nocolon"],
            2,
            'wsprobe: invalid option header: expected NAME:VALUE, got "…"',
        ),
    ],
)
def test_send_exit_codes_against_the_server(
    servers: Servers, capsys: Capture, path: str, options: list[str], code: int, message: str
) -> None:
    url = servers.ws + path
    assert cli(capsys, "send", url, "x", *options) == (code, "", message.format(url=url) + "\n")


def test_send_exit_codes_for_connection_failures(
    servers: Servers, raw_server: Callable[[RawHandler], str], capsys: Capture
) -> None:
    refused = f"ws://127.0.0.1:{unused_port()}/"
    rejected = raw_server(http_reply("HTTP/1.1 404 Not Found"))
    silent = raw_server(never_answers)
    cases = [
        (["send", refused, "x"], 5, f"connect {refused}: connection refused"),
        (
            ["send", "ws://nohost.invalid/", "x"],
            5,
            "connect ws://nohost.invalid/: could not resolve host nohost.invalid",
        ),
        (
            ["send", servers.wss + "/", "x"],
            6,
            f"connect {servers.wss}/: TLS certificate verify failed: unable to get local issuer certificate",
        ),
        (
            ["send", rejected, "x"],
            7,
            f"connect {rejected}: server rejected WebSocket upgrade: HTTP 404 Not Found",
        ),
        (["send", silent, "x", "--timeout", "0.2"], 8, f"connect {silent}: timed out after 0.2s"),
        (["send", "http://x/", "x"], 2, 'invalid url "http://x/": scheme must be ws or wss'),
    ]
    for argv, code, message in cases:
        assert cli(capsys, *argv) == (code, "", f"wsprobe: {message}\n"), argv


def test_exit_codes_are_stable() -> None:
    assert EXIT_CODES == {
        "ok": 0,
        "internal": 1,
        "usage": 2,
        "no-response": 3,
        "binary": 4,
        "connect": 5,
        "tls": 6,
        "http": 7,
        "timeout": 8,
        "protocol": 9,
        "too-large": 10,
    }


def test_usage_errors(capsys: Capture) -> None:
    code, out, err = cli(capsys, "send")
    assert (code, out) == (2, "")
    assert err == "wsprobe send: the following arguments are required: URL\n"
    assert cli(capsys)[0] == 2
    assert cli(capsys, "--version") == (0, "wsprobe 0.1.0\n", "")


# --- check ---

PERF = r"time=[\d.]+s;{w};{c};0 dns=[\d.]+s;;;0 connect=[\d.]+s;;;0{tls} upgrade=[\d.]+s;;;0 reply=[\d.]+s;;;0"


def perf(w: str = "", c: str = "", tls: bool = False) -> str:
    return PERF.format(w=re.escape(w), c=re.escape(c), tls=r" tls=[\d.]+s;;;0" if tls else "")


@pytest.mark.parametrize(
    ("path", "options", "state", "text"),
    [
        ("/", [], 0, r"WEBSOCKET OK - reply in [\d.]+s \| " + perf()),
        (
            "/",
            ["-w", "5", "-c", "10"],
            0,
            r"WEBSOCKET OK - reply in [\d.]+s \| " + perf("5", "10"),
        ),
        ("/", ["--send", "pong", "--expect", "pon"], 0, r"WEBSOCKET OK - .*"),
        ("/", ["--send", "pong7", "--expect-regex", r"^p\w+\d$"], 0, r"WEBSOCKET OK - .*"),
        (
            "/",
            [
                "--send",
                '{"status":"ok","n":{"v":[1,2]}}',
                "--expect-json",
                "status=ok",
                "--expect-json",
                "n.v.1=2",
            ],
            0,
            r"WEBSOCKET OK - .*",
        ),
        (
            "/delay",
            ["-w", "0.5"],
            1,
            r"WEBSOCKET WARNING - reply in 1\.\d+s \(warning 0\.5\) \| " + perf("0.5"),
        ),
        (
            "/delay",
            ["-w", "0.2", "-c", "0.5"],
            2,
            r"WEBSOCKET CRITICAL - reply in 1\.\d+s \(critical 0\.5\) \| " + perf("0.2", "0.5"),
        ),
        ("/", ["-w", "@0:5"], 1, r"WEBSOCKET WARNING - reply in [\d.]+s \(warning @0:5\) .*"),
        (
            "/",
            ["--expect", "nope"],
            2,
            r'WEBSOCKET CRITICAL - reply does not contain "nope": "ping" \| .*',
        ),
        (
            "/",
            ["--expect-regex", "^x"],
            2,
            r'WEBSOCKET CRITICAL - reply does not match /\^x/: "ping" \| .*',
        ),
        (
            "/",
            ["--expect-json", "a=1"],
            2,
            r'WEBSOCKET CRITICAL - reply is not JSON: "ping" \| .*',
        ),
        (
            "/",
            ["--send", '{"a":true}', "--expect-json", "a=1"],
            2,
            r"WEBSOCKET CRITICAL - JSON field a is true, expected 1 \| .*",
        ),
        (
            "/",
            ["--send", '{"a":1}', "--expect-json", "b=1"],
            2,
            r'WEBSOCKET CRITICAL - reply has no JSON field b: "\{\\"a\\":1\}" \| .*',
        ),
        ("/binary", [], 2, r"WEBSOCKET CRITICAL - ws binary messages not supported"),
        (
            "/close1008",
            [],
            2,
            r"WEBSOCKET CRITICAL - no response from web socket \(server closed with 1008 go away\)",
        ),
        (
            "/silent",
            ["--timeout", "0.2"],
            2,
            r"WEBSOCKET CRITICAL - no response from web socket \(timed out\)",
        ),
        ("/", ["-w", "x"], 3, r"WEBSOCKET UNKNOWN - invalid threshold range 'x'"),
        (
            "/",
            ["-c", "5:1"],
            3,
            r"WEBSOCKET UNKNOWN - invalid threshold range '5:1': start is above end",
        ),
        (
            "/",
            ["--expect-regex", "("],
            3,
            r"WEBSOCKET UNKNOWN - invalid option --expect-regex: missing \): \(",
        ),
        (
            "/",
            ["--expect-json", "novalue"],
            3,
            r'WEBSOCKET UNKNOWN - --expect-json wants PATH=VALUE, got "novalue"',
        ),
        (
            "/",
            ["--expect-regex", r"(\w)\1"],
            3,
            r"WEBSOCKET UNKNOWN - invalid option --expect-regex: invalid escape sequence: \\1",
        ),
        # RE2 runs in linear time: the pattern that backtracks for ever in `re` does not.
        (
            "/",
            ["--send", "a" * 5000 + "c", "--expect-regex", "(a*)*b"],
            2,
            r'WEBSOCKET CRITICAL - reply does not match /\(a\*\)\*b/: "a{79}…" \| .*',
        ),
        ("/", ["--send", "42", "--expect-json", ".=42"], 0, r"WEBSOCKET OK - .*"),
        (
            "/",
            ["--send", '"up"', "--expect-json", ".=down"],
            2,
            r'WEBSOCKET CRITICAL - reply is "up", expected "down" \| .*',
        ),
        (
            "/",
            ["--send", json.dumps({"a": "x" * 5000}), "--expect-json", "a=y"],
            2,
            r'WEBSOCKET CRITICAL - JSON field a is "x{78}…, expected "y" \| .*',
        ),
        (
            "/",
            ["--send", "a|b\nc", "--expect", "z"],
            2,
            r'WEBSOCKET CRITICAL - reply does not contain "z": "a¦b\\nc" \| time=.*',
        ),
        (
            "/delay",
            ["--send", '{"s":1}', "--expect", "z", "--expect-json", "s=2", "-w", "0.5"],
            2,
            r'WEBSOCKET CRITICAL - reply does not contain "z": "\{\\"s\\":1\}"; '
            r"JSON field s is 1, expected 2; reply in 1\.\d+s \(warning 0\.5\) \| .*",
        ),
        (
            "/",
            ["-w", "nan"],
            3,
            r"WEBSOCKET UNKNOWN - invalid threshold range 'nan': not a number",
        ),
        (
            "/",
            ["--timeout", "0"],
            3,
            r"WEBSOCKET UNKNOWN - invalid option timeout: must be a positive number of seconds, got 0\.0",
        ),
        (
            "/",
            ["--bogus"],
            3,
            r"WEBSOCKET UNKNOWN - wsprobe: unrecognized arguments: --bogus",
        ),
    ],
)
def test_check_states(
    servers: Servers, capsys: Capture, path: str, options: list[str], state: int, text: str
) -> None:
    code, out, err = cli(capsys, "check", servers.ws + path, *options)
    assert (code, err) == (state, "")
    assert re.fullmatch(text, out.rstrip("\n")), out


def test_check_connection_failures(servers: Servers, capsys: Capture) -> None:
    refused = f"ws://127.0.0.1:{unused_port()}/"
    assert cli(capsys, "check", refused) == (
        2,
        f"WEBSOCKET CRITICAL - connect {refused}: connection refused\n",
        "",
    )
    assert cli(capsys, "check", "http://x/") == (
        3,
        'WEBSOCKET UNKNOWN - invalid url "http://x/": scheme must be ws or wss\n',
        "",
    )
    assert cli(capsys, "check") == (
        3,
        "WEBSOCKET UNKNOWN - wsprobe check: the following arguments are required: URL\n",
        "",
    )


def test_check_tls_and_certificate_days(servers: Servers, capsys: Capture) -> None:
    ca = ["--cafile", str(servers.ca_file)]
    code, out, _ = cli(capsys, "check", servers.wss + "/", *ca, "--cert-warn-days", "30")
    assert code == 0
    assert re.fullmatch(r"WEBSOCKET OK - reply in [\d.]+s \| " + perf(tls=True), out.rstrip())
    # trustme certificates live for centuries: demand more to make them "expire soon".
    code, out, _ = cli(capsys, "check", servers.wss + "/", *ca, "--cert-crit-days", "999999")
    assert code == 2
    assert re.match(
        r"WEBSOCKET CRITICAL - certificate expires in \d+ days \(\d{4}-\d\d-\d\d\) \|", out
    )
    code, out, _ = cli(capsys, "check", servers.wss + "/", *ca, "--cert-warn-days", "999999")
    assert code == 1
    code, out, _ = cli(capsys, "check", servers.ws + "/", "--cert-warn-days", "30")
    assert code == 3
    assert out.startswith(
        "WEBSOCKET UNKNOWN - certificate expiry unknown (not wss://, or --insecure) |"
    )


def fake_result(total: float, expires: datetime.datetime | None = None) -> Result:
    timings = Timings(dns=0, connect=0, tls=None, upgrade=0, reply=0, total=total)
    return Result("r", "ws://x/", "1.2.3.4:80", 101, None, timings, cert_expires=expires)


def test_judge_names_the_worst_state_first() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    soon = now + datetime.timedelta(days=3)
    expect = Expectations(warning=Range.parse("1"), cert_crit_days=7)
    verdict = judge(fake_result(2.0, soon), expect, now)
    assert verdict.state is State.CRITICAL
    assert verdict.text == (
        "certificate expires in 3 days (2026-01-04); reply in 2.000s (warning 1)"
    )


@pytest.mark.parametrize(
    ("text", "alerts", "calm"),
    [
        ("10", [-1, 10.5], [0, 10]),
        ("10:", [9.9], [10, 1e9]),
        ("~:10", [10.1], [-1e9, 10]),
        ("10:20", [9, 21], [10, 20]),
        ("@10:20", [10, 20], [9, 21]),
    ],
)
def test_nagios_ranges(text: str, alerts: list[float], calm: list[float]) -> None:
    threshold = Range.parse(text)
    assert [threshold.alerts(v) for v in alerts] == [True] * len(alerts)
    assert [threshold.alerts(v) for v in calm] == [False] * len(calm)


# --- serve ---


def test_serve_behaviours(capsys: Capture) -> None:
    from tests.conftest import LoopThread
    from wsprobe.cli.localserver import GREETING, start_local

    loop = LoopThread()
    servers = loop.run(start_local())
    base = servers.url
    try:
        cases = [
            (["send", base + "/", "e"], 0, "e\n"),
            (["send", base + "/binary", "b"], 4, ""),
            (["send", base + "/silent", "s", "--timeout", "0.2"], 3, ""),
            (["send", base + "/close", "c"], 3, ""),
            (["send", base + "/delay?ms=10", "d"], 0, "d\n"),
            (["send", base + "/greeting", "g"], 0, GREETING + "\n"),
        ]
        for argv, code, out in cases:
            assert cli(capsys, *argv)[:2] == (code, out), argv
        assert cli(capsys, "send", base + "/close", "c")[2] == (
            "wsprobe: no response from web socket (server closed with 1008 policy violation)\n"
        )
    finally:
        loop.run(servers.close())
        loop.stop()


# --- one real process per command ---

ROOT = Path(__file__).resolve().parents[2]
WSPROBE = [sys.executable, "-m", "wsprobe"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_process_serve_send_check_run(tmp_path: Path, stop: signal.Signals) -> None:
    port, tls_port = unused_port(), unused_port()
    server = subprocess.Popen(
        [
            *WSPROBE,
            "serve",
            "--port",
            str(port),
            "--tls",
            "--tls-port",
            str(tls_port),
            "--tls-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        second = server.stdout.readline()
        assert first.startswith(f"wsprobe serve: ws://127.0.0.1:{port}/ (echo;")
        assert second == (
            f"wsprobe serve: wss://127.0.0.1:{tls_port}/ (trust it with --cafile {tmp_path}/ca.pem)\n"
        )
        sent = subprocess.run(
            [*WSPROBE, "send", f"ws://127.0.0.1:{port}/", "hello"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (sent.returncode, sent.stdout, sent.stderr) == (0, "hello\n", "")
        checked = subprocess.run(
            [
                *WSPROBE,
                "check",
                f"wss://localhost:{tls_port}/",
                "--cafile",
                str(tmp_path / "ca.pem"),
                "--expect",
                "ping",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0
        assert checked.stdout.startswith("WEBSOCKET OK - reply in ")
        script = tmp_path / "s.lua"
        script.write_text(f'print(ws.send_recv("ws://127.0.0.1:{port}/", "lua"))')
        ran = subprocess.run(
            [*WSPROBE, "run", str(script)], capture_output=True, text=True, timeout=30, check=False
        )
        assert (ran.returncode, ran.stdout, ran.stderr) == (0, "lua\n", "")
    finally:
        server.send_signal(stop)
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0
    assert err == "wsprobe serve: stopped\n"


def test_serve_port_in_use(capsys: Capture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli(capsys, "serve", "--port", str(port))
    assert code == 1
    assert err == "wsprobe serve: cannot listen on 127.0.0.1: address already in use\n"


def test_no_python_traceback_on_internal_errors(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wsprobe.client

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(wsprobe.client, "probe_with", broken)
    assert cli(capsys, "send", "ws://127.0.0.1:9/", "x") == (
        1,
        "",
        "wsprobe: internal error: RuntimeError: a bug\n",
    )
    code, out, _ = cli(capsys, "check", "ws://127.0.0.1:9/")
    assert (code, out) == (3, "WEBSOCKET UNKNOWN - internal error: RuntimeError: a bug\n")
