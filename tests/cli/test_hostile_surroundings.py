"""The commands in hostile surroundings, as real processes: closed standard streams,
an encoding that cannot write the output, a low open-file limit, SIGINT while a
command waits, arguments that are not UTF-8. Whatever the surroundings, a command
ends with one of its documented exit codes, in one line, never an internal error or
a traceback.

The children run without coverage's start-up (:mod:`tests.support.fresh`): it opens
files of its own, which a low open-file limit or a closed descriptor would change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import Servers
from tests.support.fresh import unmeasured_environment
from tests.support.net import connections_to, never_answers
from tests.support.wire import RawHandler

WSPROBE = [sys.executable, "-m", "wsprobe"]

#: Every exit code each command documents (docs/cli.md).
DOCUMENTED = {
    "run": {0, 1, 2, 130, 143},
    "send": {*range(11), 130},
    "check": {0, 1, 2, 3},
    "agent": {0, 1, 2},
    "serve": {0, 1, 2},
}

#: What one line of a failure never is.
BROKEN = re.compile(r"internal error|Traceback|Exception ignored|Fatal Python error")


@dataclasses.dataclass(frozen=True)
class Surroundings:
    """What the process starts with: descriptors closed, descriptors on ``/dev/full``
    (every write fails: no space left on device), ``PYTHONIOENCODING``, and the
    open-file limit (soft, hard; ``None``: the hard limit as it is)."""

    closed: tuple[int, ...] = ()
    encoding: str | None = None
    nofile: tuple[int, int | None] | None = None
    full: tuple[int, ...] = ()

    def prepare(self) -> None:
        if self.nofile is not None:
            soft, hard = self.nofile
            _, current = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current if hard is None else hard))
        for fd in self.closed:
            os.close(fd)
        if self.full:
            full = os.open("/dev/full", os.O_WRONLY)
            for fd in self.full:
                os.dup2(full, fd)
            os.close(full)

    def environment(self) -> dict[str, str]:
        env = unmeasured_environment()
        env.pop("PYTHONIOENCODING", None)
        if self.encoding is not None:
            env["PYTHONIOENCODING"] = self.encoding
        return env


PLAIN = Surroundings()


def wsprobe(argv: Sequence[str | bytes], where: Surroundings = PLAIN) -> tuple[int, str, str]:
    """``wsprobe ARGV`` in ``where``: the exit code, standard output and error."""
    done = subprocess.run(
        [*WSPROBE, *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=where.environment(),
        preexec_fn=where.prepare,
        check=False,
        timeout=60,
    )
    # Strict: in every surroundings the output is text of its encoding.
    encoding = where.encoding or "utf-8"
    return done.returncode, done.stdout.decode(encoding), done.stderr.decode(encoding)


@dataclasses.dataclass
class Files:
    """The scripts and configurations of the rows."""

    ok: str
    says_hi: str
    non_ascii: str
    returns_non_ascii: str
    not_utf8_name: bytes
    fails: str
    line_break_name: str
    agent: str
    agent_four_workers: str


@pytest.fixture
def files(tmp_path: Path, servers: Servers) -> Files:
    def write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return str(tmp_path / name)

    not_utf8 = os.fsencode(tmp_path) + b"/\xff.lua"
    Path(os.fsdecode(not_utf8)).write_text('print("hi")')
    monitors = f'monitors:\n  - {{name: echo, url: "{servers.ws}/", interval: 30s}}\n'
    return Files(
        ok=write("ok.lua", "return nil"),
        says_hi=write("hi.lua", 'print("hi")'),
        non_ascii=write("u.lua", 'print("héllo ✓ 😀")'),
        returns_non_ascii=write("r.lua", 'return "é😀"'),
        not_utf8_name=not_utf8,
        fails=write("fails.lua", 'error("boom")'),
        line_break_name=write("x\ny\x01.lua", 'print("hi")'),
        agent=write("agent.yaml", monitors),
        agent_four_workers=write("four.yaml", "workers: 4\n" + monitors),
    )


def exactly(text: str) -> str:
    return re.escape(text)


ASCII = Surroundings(encoding="ascii")
STDOUT_FULL = Surroundings(full=(1,))
STDERR_FULL = Surroundings(full=(2,))
BOTH_FULL = Surroundings(full=(1, 2))
NO_SPACE = "wsprobe: standard input or output failed: no space left on device\n"
NOFILE_16 = Surroundings(nofile=(16, 16))
TIMINGS = r" \| time=.*\n"


def rows(
    servers: Servers, files: Files
) -> Iterator[tuple[str, list[str | bytes], Surroundings, int, str, str]]:
    """(what, argv, surroundings, exit code, stdout and stderr as regular expressions)."""
    ws = servers.ws + "/"
    too_low = "the open-file limit of 16 is too low, 36 needed: raise it (ulimit -n 36)"
    # Closed descriptors: a command that cannot write its answer says so, with the
    # code of output that cannot be written; one that can do without one goes on.
    yield "check, stdout and stderr closed", ["check", ws], Surroundings(closed=(1, 2)), 3, "", ""
    yield (
        "check, stdout closed",
        ["check", ws],
        Surroundings(closed=(1,)),
        3,
        "",
        exactly("wsprobe: standard output is closed\n"),
    )
    yield (
        "check, stderr closed",
        ["check", ws],
        Surroundings(closed=(2,)),
        0,
        "WEBSOCKET OK - reply in .*" + TIMINGS,
        "",
    )
    yield (
        "check --script, stdin closed",
        ["check", "--script", files.says_hi],
        Surroundings(closed=(0,)),
        0,
        exactly("WEBSOCKET OK - hi.lua: null\nhi\n"),
        "",
    )
    yield (
        "send, stdout closed",
        ["send", ws, "x"],
        Surroundings(closed=(1,)),
        1,
        "",
        exactly("wsprobe: standard output is closed\n"),
    )
    yield (
        "send, stdin closed: an empty message",
        ["send", ws],
        Surroundings(closed=(0,)),
        0,
        "\n",
        "",
    )
    yield (
        "run, stdout closed",
        ["run", files.ok],
        Surroundings(closed=(1,)),
        1,
        "",
        exactly("wsprobe: standard output is closed\n"),
    )
    yield (
        "run -, stdin closed: an empty script",
        ["run", "-"],
        Surroundings(closed=(0,)),
        0,
        "",
        "",
    )
    # Standard streams that cannot be written (a full disk): a plugin still answers
    # UNKNOWN (never 1, WARNING), a usage error is still one.
    yield (
        "check, bad flag, stdout full",
        ["check", "--bogus"],
        STDOUT_FULL,
        3,
        "",
        exactly(NO_SPACE),
    )
    yield "check, stdout and stderr full", ["check", ws], BOTH_FULL, 3, "", ""
    yield (
        "check --script, stdout and stderr full",
        ["check", "--script", files.says_hi],
        BOTH_FULL,
        3,
        "",
        "",
    )
    yield (
        "check --script, an error the script's stderr cannot take",
        ["check", "--script", files.fails],
        STDERR_FULL,
        3,
        exactly("WEBSOCKET UNKNOWN - cannot write to standard error: no space left on device\n"),
        "",
    )
    for command in ("run", "send", "agent"):
        yield f"{command}, no arguments, stderr full", [command], STDERR_FULL, 2, "", ""
    yield (
        "serve, stdout full: it cannot say where it listens",
        ["serve", "--port", "0"],
        STDOUT_FULL,
        1,
        "",
        exactly("wsprobe serve: cannot write to standard output: no space left on device\n"),
    )
    # A script's name is one printable line, whatever its file's name.
    yield (
        "run, a script name with a line break",
        ["run", files.line_break_name, files.ok],
        PLAIN,
        0,
        exactly("[x\\ny\\x01.lua] hi\n"),
        "",
    )
    # A script path without a file name still names the script.
    yield (
        "check --script, a directory",
        ["check", "--script", "/"],
        PLAIN,
        3,
        exactly("WEBSOCKET UNKNOWN - /: cannot read script: is a directory\n"),
        exactly("/: cannot read script: is a directory\n"),
    )
    # What standard output cannot encode is escaped, JSON's way.
    yield (
        "run, ascii output",
        ["run", files.non_ascii],
        ASCII,
        0,
        exactly("h\\u00e9llo \\u2713 \\ud83d\\ude00\n"),
        "",
    )
    yield (
        "run --json, ascii output",
        ["run", "--json", files.returns_non_ascii],
        ASCII,
        0,
        r'\{"duration":[0-9.e-]+,"error":null,"name":"r.lua","ok":true,'
        + exactly(
            r'"result":"\u00e9\ud83d\ude00","signal":null,"status":"ok","value":"\u00e9\ud83d\ude00"}'
        )
        + "\n",
        "",
    )
    yield (
        "check --script, ascii output",
        ["check", "--script", files.non_ascii],
        ASCII,
        0,
        exactly("WEBSOCKET OK - u.lua: null\nh\\u00e9llo \\u2713 \\ud83d\\ude00\n"),
        "",
    )
    yield (
        "check, ascii output",
        ["check", ws, "--expect", "é"],
        ASCII,
        2,
        exactly('WEBSOCKET CRITICAL - reply does not contain "\\u00e9": "ping"') + TIMINGS,
        "",
    )
    yield "send, ascii output", ["send", ws, "Olá"], ASCII, 0, exactly("Ol\\u00e1\n"), ""
    yield (
        "send --json, ascii output",
        ["send", "--json", ws, "Olá"],
        ASCII,
        0,
        r'\{"url": .*, "reply": "Ol\\u00e1", .*\}\n',
        "",
    )
    # Arguments that are not UTF-8 (Python holds their bytes as lone surrogates).
    yield (
        "send, a URL of bytes",
        ["send", b"ws://\xff/", "x"],
        PLAIN,
        2,
        "",
        exactly('wsprobe: invalid url "ws://\\udcff/": invalid host name \\udcff\n'),
    )
    yield (
        "send, a message of bytes",
        ["send", ws, b"\xff"],
        PLAIN,
        2,
        "",
        exactly("wsprobe: invalid argument data: not valid UTF-8 text\n"),
    )
    yield (
        "check, an expectation of bytes",
        ["check", ws, "--expect", b"\xff"],
        ASCII,
        2,
        exactly('WEBSOCKET CRITICAL - reply does not contain "\\udcff": "ping"') + TIMINGS,
        "",
    )
    yield "run, a script name of bytes", ["run", files.not_utf8_name], ASCII, 0, "hi\n", ""
    # A low open-file limit: one line that says so and what to do.
    yield "run, 16 files", ["run", files.ok], NOFILE_16, 1, "", exactly(f"wsprobe: {too_low}\n")
    yield (
        "check --script, 16 files",
        ["check", "--script", files.ok],
        NOFILE_16,
        3,
        exactly(f"WEBSOCKET UNKNOWN - {too_low}\n"),
        "",
    )
    yield (
        "agent, 16 files",
        ["agent", files.agent],
        NOFILE_16,
        1,
        "",
        exactly(f"wsprobe agent: {too_low}\n"),
    )
    yield (
        "agent with 4 workers, 40 files",
        ["agent", files.agent_four_workers],
        Surroundings(nofile=(40, 40)),
        1,
        "",
        exactly(
            "wsprobe agent: the open-file limit of 40 is too low, 48 needed: raise it (ulimit -n 48)\n"
        ),
    )
    yield (
        "run, a low soft limit is raised",
        ["run", files.says_hi],
        Surroundings(nofile=(16, None)),
        0,
        "hi\n",
        "",
    )
    yield "send, 16 files", ["send", ws, "x"], NOFILE_16, 0, "x\n", ""
    yield (
        "check, 16 files",
        ["check", ws],
        NOFILE_16,
        0,
        "WEBSOCKET OK - reply in .*" + TIMINGS,
        "",
    )


@pytest.mark.slow
def test_each_command_in_hostile_surroundings(servers: Servers, files: Files) -> None:
    failures = []
    for what, argv, where, code, out, err in rows(servers, files):
        got = wsprobe(argv, where)
        if not (
            got[0] == code and re.fullmatch(out, got[1], re.S) and re.fullmatch(err, got[2], re.S)
        ):
            failures.append((what, got))
        elif "--json" in argv:
            json.loads(got[1])
    assert not failures, failures


#: Every command, against every surroundings below.
def commands(servers: Servers, files: Files) -> list[list[str | bytes]]:
    ws = servers.ws + "/"
    return [
        ["run", files.non_ascii],
        ["run", "--json", files.returns_non_ascii, files.not_utf8_name],
        ["run", "-"],
        ["send", ws, "Olá 😀"],
        ["send", "--json", b"ws://\xff/", "x"],
        ["send", "-v", ws],
        ["check", ws, "--expect", b"\xff"],
        ["check", "--script", files.non_ascii],
        ["agent", files.agent_four_workers, "--shard", "x"],
        ["agent", b"\xff.yaml"],
        ["serve", "--port", servers.ws.rsplit(":", 1)[1]],  # taken
    ]


SURROUNDINGS = {
    "stdin closed": Surroundings(closed=(0,)),
    "stdout closed": Surroundings(closed=(1,)),
    "stderr closed": Surroundings(closed=(2,)),
    "stdout and stderr closed": Surroundings(closed=(1, 2)),
    "all closed": Surroundings(closed=(0, 1, 2)),
    "ascii": ASCII,
    "latin-1": Surroundings(encoding="latin-1"),
    "stdout full": STDOUT_FULL,
    "stderr full": STDERR_FULL,
    "stdout and stderr full": BOTH_FULL,
    "8 files": Surroundings(nofile=(8, 8)),
    "16 files, ascii, stdin closed": Surroundings(closed=(0,), encoding="ascii", nofile=(16, 16)),
}


@pytest.mark.slow
@pytest.mark.parametrize("where", SURROUNDINGS.values(), ids=SURROUNDINGS.keys())
def test_no_command_breaks_in_hostile_surroundings(
    servers: Servers, files: Files, where: Surroundings
) -> None:
    """A documented exit code and one line per failure, whatever the surroundings."""
    failures = []
    for argv in commands(servers, files):
        code, out, err = wsprobe(argv, where)
        command = str(argv[0])
        if code not in DOCUMENTED[command] or BROKEN.search(out + err):
            failures.append((argv, code, out, err))
        if command == "check" and 1 not in where.closed + where.full:
            # One status line, then only what a script printed.
            assert re.match(r"WEBSOCKET (OK|WARNING|CRITICAL|UNKNOWN) - ", out), (argv, out)
    assert not failures, failures


# --- SIGINT while a command waits ---


def opened_twice(pid: int, target: str) -> bool:
    """Whether ``pid`` holds ``target`` (a ``/proc/PID/fd`` link) on a second
    descriptor: it opened its standard input to read a script from it."""
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return links.count(target) >= 2


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("stdin", ["pipe", "terminal"])
@pytest.mark.parametrize(
    ("argv", "code", "out", "err"),
    [
        (["run", "-"], 130, "", "stdin: interrupted\n"),
        (
            ["check", "--script", "-"],
            3,
            "WEBSOCKET UNKNOWN - interrupted\n",
            "stdin: interrupted\n",
        ),
    ],
    ids=["run", "check"],
)
def test_sigint_ends_a_script_read_from_standard_input_left_open(
    stdin: str, argv: list[str], code: int, out: str, err: str
) -> None:
    """Standard input that never ends (a terminal, a pipe whose writer stays) does
    not hold an interrupted command until the script's time limit."""
    if stdin == "pipe":
        reader, writer = os.pipe()
    else:
        writer, reader = pty.openpty()
    try:
        process = subprocess.Popen(
            [*WSPROBE, *argv],
            stdin=reader,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=unmeasured_environment(),
            text=True,
        )
        target = os.readlink(f"/proc/{process.pid}/fd/0")
        wait_for(lambda: opened_twice(process.pid, target))
        process.send_signal(signal.SIGINT)
        # Well within the 60 s time limit a script read from standard input has.
        got, errors = process.communicate(timeout=20)
    finally:
        os.close(reader)
        os.close(writer)
    assert (process.returncode, got, errors) == (code, out, err)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "code", "out", "err"),
    [
        (["send", "{url}", "x"], 130, "", "wsprobe: interrupted\n"),
        (["check", "{url}"], 3, "WEBSOCKET UNKNOWN - interrupted\n", ""),
    ],
    ids=["send", "check"],
)
def test_sigint_ends_a_call_that_waits(
    raw_server: Callable[[RawHandler], str], argv: list[str], code: int, out: str, err: str
) -> None:
    """A plugin interrupted is UNKNOWN (not a shell's 130); `send` says it was interrupted."""
    url = raw_server(never_answers)
    process = subprocess.Popen(
        [*WSPROBE, *(arg.format(url=url) for arg in argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=unmeasured_environment(),
        text=True,
    )
    wait_for(lambda: connections_to(urlsplit(url).port or 0) > 0)
    process.send_signal(signal.SIGINT)
    assert process.communicate(timeout=20) == (out, err)
    assert process.returncode == code


# --- a program calling main() ---


@pytest.mark.slow
def test_a_program_calling_main_keeps_its_process_as_it_was(files: Files) -> None:
    """main() is the command line for a program too: run twice in one process, each
    command leaves the process's open-file limit, signal handlers, standard streams
    and descriptors as they were."""
    program = f"""
import io, os, resource, signal, sys
from wsprobe.cli import main

def state():
    return (
        resource.getrlimit(resource.RLIMIT_NOFILE),
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGTERM),
        sys.stdout.encoding, sys.stdout.errors, sys.stderr.errors,
        sorted(os.listdir("/proc/self/fd")),
    )

main(["run", {files.ok!r}])  # what importing the commands opens stays
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
before = state()
changed = []
for argv in (["run", {files.says_hi!r}], ["check", "--script", {files.says_hi!r}]) * 2:
    main(argv)
    if state() != before:
        changed.append((argv, before, state()))
print(changed, file=sys.stderr)
"""
    done = subprocess.run(
        [sys.executable, "-c", program],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=unmeasured_environment(),
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "[]\n")


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.RLIM_INFINITY))


@pytest.mark.slow
def test_send_reads_a_bounded_message_from_an_endless_standard_input(servers: Servers) -> None:
    """A standard input that never ends (/dev/zero, a stuck producer) is read only up
    to the largest message worth sending, not until memory runs out."""
    with open("/dev/zero", "rb") as zeros:
        done = subprocess.run(
            [*WSPROBE, "send", servers.ws + "/", "--max-size", "1000"],
            stdin=zeros,
            capture_output=True,
            text=True,
            env=unmeasured_environment(),
            preexec_fn=limit_memory,
            check=False,
            timeout=60,
        )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "wsprobe: invalid argument MESSAGE: standard input is larger than --max-size (1000 bytes)\n",
    )


@pytest.mark.slow
def test_serve_stops_cleanly_with_standard_error_full() -> None:
    """`serve` stopped by SIGINT is a clean stop (0) even when its last line cannot
    be written."""
    with (
        open("/dev/full", "wb") as full,
        subprocess.Popen(
            [*WSPROBE, "serve", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=full,
            env=unmeasured_environment(),
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        assert process.stdout.readline().startswith("wsprobe serve: ws://")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
