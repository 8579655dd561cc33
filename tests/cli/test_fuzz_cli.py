"""Properties of every command-line flag, fuzzed with Hypothesis, in-process.

``send``: a documented exit code, and on failure exactly one line on standard error
(``-v`` adds ``* `` fact lines before it). ``check``: exactly one status line on
standard output whose state is the exit code, nothing on standard error. ``run``
and ``serve``: 0, 1 or 2 with one line per failure. Nowhere a password of the URL
or the value of a credential header, whatever ``-v`` or ``--json`` print.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, Servers
from tests.support.fuzz import FUZZ, header_values, leaks, secrets, urls
from tests.support.net import ports
from wsprobe.cli import main

STATUS = re.compile(r"WEBSOCKET (OK|WARNING|CRITICAL|UNKNOWN) - [^\n|]*( \| [^\n]*)?\n")
NUMBERS = st.one_of(
    st.sampled_from(["0", "-1", "1e10", "nan", "inf", "1" * 25, "0x10", "", " 5", "5", "0.3"]),
    st.text(max_size=6),
    st.integers().map(str),
    st.floats().map(str),
)


def in_process(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def flags(secret: str, ca_file: str) -> st.SearchStrategy[list[str]]:
    """Call flags, each with a generated value."""
    header = st.one_of(
        header_values(secret).map(lambda v: f"Authorization: {v}"),
        header_values(secret).map(lambda v: f"Cookie:{v}"),
        st.just(f"Authorization Bearer {secret}"),
        st.just(f"X-Token {secret}"),
        st.text(max_size=12),
    )
    flag = st.one_of(
        st.tuples(st.just("--timeout"), NUMBERS),
        st.tuples(st.just("--max-size"), NUMBERS),
        st.tuples(st.just("-H"), header),
        st.tuples(st.just("--subprotocol"), st.text(max_size=6)),
        st.tuples(st.just("--origin"), st.one_of(st.text(max_size=6), header_values(secret))),
        st.tuples(st.just("--cafile"), st.sampled_from([ca_file, "/nonexistent", ""])),
        st.tuples(st.sampled_from(["--insecure", "--no-compression"])),
    )
    return st.lists(flag, max_size=4).map(lambda items: [part for item in items for part in item])


@FUZZ
@given(secret=secrets, data=st.data())
def test_send(servers: Servers, secret: str, data: st.DataObject) -> None:
    url = data.draw(urls(ports(servers), data.draw(st.one_of(st.none(), st.just(secret)))))
    extra = data.draw(flags(secret, str(servers.ca_file)))
    output = data.draw(st.sampled_from([[], ["-v"], ["--json"]]))
    message = data.draw(
        st.one_of(
            st.tuples(st.text(max_size=8), st.just(b"")).map(lambda m: ([m[0]], m[1])),
            st.binary(max_size=8).map(lambda b: (["-"], b)),
        )
    )
    argv = ["send", url, *message[0], *extra, *output]
    code, out, err = in_process(argv, message[1])
    assert code in (0, 2, 3, 4, 5, 6, 7, 8, 9, 10), (argv, code, err)
    assert not leaks(secret, out, err), (argv, out, err)
    lines = err.splitlines()
    if code == 0:
        assert all(line.startswith("* ") for line in lines), err
    elif output == ["--json"] and out:
        assert json.loads(out)["exit"] == code, out
        assert err == "", err
    else:  # argparse's usage errors come before --json is known
        assert len([line for line in lines if not line.startswith("* ")]) == 1, err
        assert lines[-1].startswith("wsprobe"), err


@FUZZ
@given(secret=secrets, data=st.data())
def test_check(servers: Servers, secret: str, data: st.DataObject) -> None:
    url = data.draw(urls(ports(servers), data.draw(st.one_of(st.none(), st.just(secret)))))
    extra = data.draw(flags(secret, str(servers.ca_file)))
    check_flag = st.one_of(
        st.tuples(st.sampled_from(["-w", "-c"]), st.one_of(NUMBERS, st.text(max_size=6))),
        st.tuples(st.sampled_from(["--cert-warn-days", "--cert-crit-days"]), NUMBERS),
        st.tuples(st.sampled_from(["--expect", "--send"]), st.text(max_size=10)),
        st.tuples(
            st.just("--expect-regex"),
            st.one_of(st.text(max_size=6), st.sampled_from(["(a*)*b", "(", "a|b", "\\1"])),
        ),
        st.tuples(
            st.just("--expect-json"),
            st.one_of(st.text(max_size=8), st.sampled_from([".=1", "a=1", "=1", "a.0=x"])),
        ),
    )
    checks = data.draw(st.lists(check_flag, max_size=4))
    argv = ["check", url, *extra, *[part for item in checks for part in item]]
    code, out, err = in_process(argv)
    assert err == "", (argv, err)
    assert STATUS.fullmatch(out), (argv, out)
    state = out.split(" ", 2)[1]
    assert code == ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(state), (argv, out)
    assert not leaks(secret, out), (argv, out)


@FUZZ
@given(data=st.data())
def test_run_and_serve_flags(data: st.DataObject) -> None:
    """Numbers given to run's limits and serve's ports: a result or one usage line."""
    flag = data.draw(
        st.sampled_from(
            [
                "--script-timeout",
                "--memory-limit",
                "--instruction-limit",
                "--concurrency",
                "--timeout",
            ]
        )
    )
    value = data.draw(NUMBERS)
    code, out, err = in_process(["run", flag, value, "-"], b"return 1")
    assert code in (0, 1, 2), (flag, value, err)
    assert len(err.splitlines()) == (0 if code == 0 else 1), (flag, value, err)
    port_flag = data.draw(st.sampled_from(["--port", "--tls-port"]))
    port = data.draw(st.one_of(NUMBERS, st.integers().map(str)))
    # A valid port would serve until stopped: serve itself is tested by a process.
    digits = port.strip()
    assume(not (digits.isdecimal() and int(digits) <= 65535))
    code, out, err = in_process(["serve", port_flag, port])
    assert (code, out) == (2, ""), (port_flag, port, err)
    assert len(err.splitlines()) == 1, err


@settings(FUZZ, max_examples=12)
@given(secret=secrets, data=st.data())
def test_real_processes(servers: Servers, secret: str, data: st.DataObject) -> None:
    """Through a real process: argv bytes that are not UTF-8 (which only a process can
    be given), real standard streams; the same outcomes as in-process."""
    command = data.draw(st.sampled_from(["send", "check"]))
    url = data.draw(urls(ports(servers)[:1], secret)).encode()
    junk = data.draw(st.binary(min_size=1, max_size=6).filter(lambda b: b"\0" not in b))
    assume(b"\0" not in url)  # no argv can hold one
    flag = data.draw(
        st.sampled_from([[b"--timeout", junk], [b"-H", b"Authorization: " + junk], [junk]])
    )
    argv = [sys.executable.encode(), b"-m", b"wsprobe", command.encode(), url, *flag]
    done = subprocess.run(
        argv, capture_output=True, cwd=ROOT, timeout=60, check=False, input=b"ping"
    )
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    assert not leaks(secret, out, err), (argv, out, err)
    if command == "check":
        assert STATUS.fullmatch(out), (argv, out, err)
        assert err == "", err
        assert done.returncode == ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(
            out.split(" ", 2)[1]
        )
    else:
        assert done.returncode in (0, 2, 3, 4, 5, 6, 7, 8, 9, 10), (argv, err)
        assert len(err.splitlines()) == (0 if done.returncode == 0 else 1), (argv, err)
