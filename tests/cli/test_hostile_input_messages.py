"""Hostile input at every entry point gets one clear message, never a crash.

Non-ASCII digits, forged log lines, flags of the wrong kind of check, lone surrogates,
bytes that are not UTF-8: each case pins the exact message (or exit code) of the CLI,
the agent, the library or a script, where a foreign exception, a 500 or an internal
error would otherwise show.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import wsprobe
from tests.conftest import Run, Servers
from tests.support.agent import AgentProcess
from tests.support.calls import cli
from tests.support.wire import RawHandler, read_request
from wsprobe.agent.config import ConfigError, parse_config
from wsprobe.agent.sharding import Shard, ShardError

Capture = pytest.CaptureFixture[str]

# "²" (U+00B2) is a digit to str.isdigit() but not to int(); in Latin-1 it is one byte.
SUPERSCRIPT_TWO = "\u00b2"


def _status_line(raw: bytes) -> RawHandler:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(raw)
        conn.recv(1024)

    return handler


def test_a_status_code_of_latin1_digits_is_not_http(
    raw_server: Callable[[RawHandler], str],
) -> None:
    # The status line is read as Latin-1: b"\xb2" is "²", which isdigit() accepts.
    url = raw_server(_status_line(b"HTTP/1.1 \xb2\xb2\xb2 Weird\r\n\r\n"))
    with pytest.raises(wsprobe.ConnectError) as caught:
        wsprobe.send_recv(url, "x", timeout=5)
    assert str(caught.value) == f"connect {url}: the server's reply is not HTTP"


def test_a_status_code_of_latin1_digits_in_a_script(
    run: Run, raw_server: Callable[[RawHandler], str]
) -> None:
    # The asyncio transport must fail at once, not swallow the ValueError and wait for the timeout.
    url = raw_server(_status_line(b"HTTP/1.1 \xb2\xb2\xb2 Weird\r\n\r\n"))
    code, out, err = run.lua(
        f'return select(2, pcall(ws.send_recv, "{url}", "x", {{timeout = 5}}))'
    )
    assert (code, out, err) == (0, f"connect {url}: the server's reply is not HTTP\n", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{SUPERSCRIPT_TWO}/3", f'invalid --shard "{SUPERSCRIPT_TWO}/3": expected I/N, like 0/2'),
        (f"0/{SUPERSCRIPT_TWO}", f'invalid --shard "0/{SUPERSCRIPT_TWO}": expected I/N, like 0/2'),
    ],
)
def test_shard_digits_must_be_ascii(text: str, message: str) -> None:
    with pytest.raises(ShardError) as caught:
        Shard.parse(text)
    assert str(caught.value) == message


def test_listen_port_digits_must_be_ascii(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f'listen: "127.0.0.1:{SUPERSCRIPT_TWO}"\nmonitors: []\n', base=tmp_path)
    assert str(caught.value) == f'listen: expected HOST:PORT, got "127.0.0.1:{SUPERSCRIPT_TWO}"'


def test_agent_listen_flag_digits_must_be_ascii(capsys: Capture, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("monitors: []\n")
    code, out, err = cli(capsys, "agent", "--listen", f"127.0.0.1:{SUPERSCRIPT_TWO}", str(config))
    assert (code, out) == (2, "")
    assert err == (
        f'wsprobe agent: --listen: expected HOST:PORT, got "127.0.0.1:{SUPERSCRIPT_TWO}"\n'
    )


def test_expect_json_index_digits_must_be_ascii(servers: Servers, capsys: Capture) -> None:
    # A list indexed by "²" has no such element: the check fails, it does not crash.
    code, out, err = cli(
        capsys, "check", servers.ws + "/", "--send", "[1,2]", "--expect-json", "\u00b2=1"
    )
    assert (code, err) == (2, "")
    assert out.startswith("WEBSOCKET CRITICAL - ")
    assert "internal error" not in out


@pytest.mark.slow
def test_results_limit_digits_must_be_ascii(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("monitors: [{name: m1, url: 'ws://127.0.0.1:9/', interval: 1h}]\n")
    agent = AgentProcess(config, tmp_path / "state")
    try:
        status, _, body = agent.get("api/monitors/m1/results?limit=%C2%B2")
    finally:
        agent.stop()
    assert (status, body) == (400, 'invalid limit "\u00b2": expected 1 to 10000\n')


def test_a_log_line_stays_one_line(run: Run) -> None:
    # A newline in a message would let a script write a line that reads as another
    # script's (or the run's own): the log is one line a call, as the README says.
    forger = run.script(
        'log.info("x\\n2026-11-25T15:50:22.131Z ERROR victim.lua: forged\\27[2J")\n'
        'error("e1\\n[victim.lua] forged", 0)\n',
        "forger.lua",
    )
    victim = run.script("return 1\n", "victim.lua")
    code, out, err = run("--log-level", "info", forger, victim)
    assert (code, out) == (1, "[victim.lua] 1\n")
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].endswith(
        " INFO forger.lua: x\\n2026-11-25T15:50:22.131Z ERROR victim.lua: forged\\x1b[2J"
    )
    assert lines[1] == "forger.lua:2: e1\\n[victim.lua] forged"


@pytest.mark.slow
def test_an_agent_log_line_stays_one_line(tmp_path: Path) -> None:
    (tmp_path / "forger.lua").write_text('error("e1\\nforged line", 0)\n')
    config = tmp_path / "agent.yaml"
    config.write_text("monitors: [{name: forger, script: forger.lua, interval: 1s}]\n")
    agent = AgentProcess(config, tmp_path / "state")
    try:
        line = agent.wait_for_log("monitor forger: ")
    finally:
        agent.stop()
    assert line.endswith(
        " wsprobe agent: monitor forger: new -> critical: forger:1: e1\\nforged line"
    )
    assert not any(text.startswith("forged") for text in agent.lines)


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--send", "x"], "--send"),
        (["--expect", "x"], "--expect"),
        (["--expect-regex", "x"], "--expect-regex"),
        (["--expect-json", "a=1"], "--expect-json"),
        (["-w", "1"], "-w/--warning"),
        (["-c", "1"], "-c/--critical"),
        (["--cert-warn-days", "3"], "--cert-warn-days"),
        (["--cert-crit-days", "3"], "--cert-crit-days"),
    ],
)
def test_check_script_refuses_the_flags_of_a_url_check(
    capsys: Capture, tmp_path: Path, flags: list[str], shown: str
) -> None:
    # A threshold the script's check silently ignored would make it exit 0 (OK).
    script = tmp_path / "ok.lua"
    script.write_text("return 1\n")
    code, out, err = cli(capsys, "check", "--script", str(script), *flags)
    assert (code, out, err) == (
        3,
        f"WEBSOCKET UNKNOWN - wsprobe check: {shown} applies to a URL, not to --script\n",
        "",
    )


def test_check_url_refuses_env(capsys: Capture) -> None:
    code, out, err = cli(capsys, "check", "ws://127.0.0.1:9/", "--env", "HOME")
    assert (code, out, err) == (
        3,
        "WEBSOCKET UNKNOWN - wsprobe check: --env applies to --script, not to a URL\n",
        "",
    )


@pytest.mark.parametrize("text", ['"a\\ud800"', '{"\\ud800": 1}', '["x", "\\udfff"]'])
def test_json_decode_refuses_lone_surrogates(run: Run, text: str) -> None:
    # Valid JSON syntax, but no UTF-8: the message was Python's codec error.
    surrogate = "d800" if "d800" in text else "dfff"
    code, out, err = run.lua(f"return select(2, pcall(json.decode, [=[{text}]=]))")
    assert (code, out, err) == (
        0,
        f"json.decode: string holds a lone surrogate \\u{surrogate} (not valid UTF-8)\n",
        "",
    )


def test_http_header_bytes_that_are_not_utf8(
    run: Run, raw_server: Callable[[RawHandler], str]
) -> None:
    # aiohttp hands them over as lone surrogates: the call died with an internal error.
    reply = (
        b"HTTP/1.1 200 OK\r\nX-A: a\xff\xfeb\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    url = raw_server(_status_line(reply)).replace("ws://", "http://")
    code, out, err = run.lua(f'local r = http.get("{url}"); return r.headers["x-a"]')
    assert (code, out, err) == (0, "a\ufffd\ufffdb\n", "")


def test_frexp_of_the_smallest_integer(run: Run) -> None:
    # abs(math.mininteger) is math.mininteger: frexp returned nan.
    code, out, err = run.lua("return string.format('%g %d', math.frexp(math.mininteger))")
    assert (code, out, err) == (0, "-0.5 64\n", "")


def test_serve_tls_dir_that_cannot_hold_the_files(capsys: Capture, tmp_path: Path) -> None:
    # It said "cannot listen on 127.0.0.1: file exists": the fault is the directory.
    taken = tmp_path / "a-file"
    taken.write_text("")
    code, out, err = cli(capsys, "serve", "--port", "0", "--tls", "--tls-dir", str(taken))
    assert (code, out) == (1, "")
    assert err == f"wsprobe serve: cannot write the TLS files to {taken}: file exists\n"


def test_serve_host_that_does_not_resolve(capsys: Capture) -> None:
    # It said "unknown error -2": a resolver's error number is not an errno.
    code, out, err = cli(capsys, "serve", "--host", "no such host.invalid", "--port", "0")
    assert (code, out) == (1, "")
    assert err.startswith("wsprobe serve: cannot listen on no such host.invalid: ")
    assert "unknown error" not in err
