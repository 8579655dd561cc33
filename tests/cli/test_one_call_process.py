"""`wsprobe send` and `wsprobe check URL` as a scheduler starts them: a process of
their own, which loads the client with stand-ins and ends without the interpreter's
teardown. Whatever that process prints and exits with is exactly what the same
command prints and returns in process, where every module is the real one.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import Servers
from tests.support.calls import Capture, cli
from tests.support.fresh import run_python
from tests.support.net import http_reply, unused_port
from tests.support.wire import RawHandler, accept_upgrade, frame

WSPROBE = [sys.executable, "-m", "wsprobe"]

#: Seconds in a check's text and perfdata and in JSON, which differ from run to run.
SECONDS = re.compile(r"\d+\.\d+(?:e-\d+)?")


def in_a_process(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    done = subprocess.run(
        [*WSPROBE, *argv], input=stdin, capture_output=True, text=True, check=False, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def same(result: tuple[int, str, str]) -> tuple[int, str, str]:
    code, out, err = result
    return code, SECONDS.sub("N", out), SECONDS.sub("N", err)


def a_reserved_opcode(conn: socket.socket) -> None:
    """Upgrade, then a frame with an opcode RFC 6455 reserves."""
    accept_upgrade(conn)
    conn.sendall(frame(0x3, b"x"))
    conn.recv(4096)


def a_masked_frame(conn: socket.socket) -> None:
    accept_upgrade(conn)
    conn.sendall(frame(0x1, b"hello", mask=True))
    conn.recv(4096)


def test_send_and_check_print_and_exit_as_in_process(
    servers: Servers, raw_server: Callable[[RawHandler], str], capsys: Capture
) -> None:
    ws = servers.ws
    reserved, masked = raw_server(a_reserved_opcode), raw_server(a_masked_frame)
    rejected = raw_server(http_reply("HTTP/1.1 404 Not Found"))
    refused = f"ws://127.0.0.1:{unused_port()}/"
    cases = [
        ["send", ws + "/", "Olá"],
        ["send", ws + "/", "Olá", "-v"],
        ["send", ws + "/", "Olá", "--json"],
        ["send", ws + "/binary", "x"],
        ["send", ws + "/close1008", "x"],
        ["send", ws + "/drop", "x"],
        ["send", ws + "/big", "x", "--max-size", "1000"],
        ["send", ws + "/", "x", "--timeout", "x"],
        ["send", ws + "/", "x", "-H", "nocolon"],
        ["send", refused, "x"],
        ["send", rejected, "x", "-v"],
        ["send", reserved, "x"],
        ["send", masked, "x", "--json"],
        ["send", "http://x/", "x"],
        ["send"],
        ["check", ws + "/"],
        ["check", ws + "/", "--send", "a|b", "--expect", "c"],
        ["check", ws + "/binary"],
        ["check", ws + "/close1008"],
        ["check", refused],
        ["check", rejected],
        ["check", reserved],
        ["check", masked],
        ["check", ws + "/", "--bogus"],
        ["check", ws + "/", "-w", "x:y"],
        ["check"],
        ["--version"],
    ]
    # The processes all start at once; meanwhile each command runs in process.
    processes = [
        subprocess.Popen(
            [*WSPROBE, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in cases
    ]
    for argv, process in zip(cases, processes, strict=True):
        in_process = cli(capsys, *argv)
        out, err = process.communicate("", timeout=60)
        assert same((process.returncode, out, err)) == same(in_process), argv


def test_send_reads_standard_input_in_a_process(servers: Servers) -> None:
    assert in_a_process("send", servers.ws + "/", stdin="Olá\n") == (0, "Olá\n", "")
    assert in_a_process("send", servers.ws + "/", "-") == (0, "\n", "")


@pytest.mark.parametrize("command", [["send"], ["check", "--send"]])
def test_a_closed_standard_output(servers: Servers, command: list[str]) -> None:
    """Output that cannot be written is still reported, and the exit code says so."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*WSPROBE, command[0], servers.ws + "/", *command[1:], "x"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=60,
        )
    assert (done.returncode, done.stderr) == (
        1 if command[0] == "send" else 3,
        "wsprobe: standard input or output failed: no space left on device\n",
    )


def test_what_a_one_call_process_does_not_import(servers: Servers) -> None:
    """The modules the stand-ins keep out of `send` and `check URL` stay out."""
    kept_out = {
        "logging",
        "traceback",
        "inspect",
        "ast",
        "secrets",
        "hashlib",
        "_hashlib",
        "hmac",
        "random",
        "platform",
        "importlib.metadata",
        "gettext",
        "locale",
        "threading",  # no resolver thread for a literal address
    }
    for argv in (["send", servers.ws + "/", "x"], ["check", servers.ws + "/"]):
        done = run_python("-X", "importtime", "-m", "wsprobe", *argv)
        imported = {
            line.rsplit("|", 1)[1].strip()
            for line in done.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "websockets.protocol" in imported
        assert imported & kept_out == set(), argv


def test_a_program_calling_main_keeps_its_logging(servers: Servers) -> None:
    """Only the command's own process gets the silent logging: a program that runs
    `send` through main() before it imports logging still has the client's loggers."""
    program = f"""
import io, sys
from wsprobe.cli import main
sys.stdout = io.StringIO()
main(["send", "{servers.ws}/", "x"])
sys.stdout = sys.__stdout__
import logging
logging.basicConfig(level=logging.DEBUG, format="%(name)s")
from wsprobe.client import probe_with
from wsprobe.options import make_options
probe_with("{servers.ws}/", "x", make_options())
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "wsprobe.protocol\n" in done.stderr
