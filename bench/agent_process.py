"""A `wsprobe agent` process for the bench: started on a configuration, its URL read
from its log, stopped by its PID; what its processes hold; its HTTP answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# The agent's command line is the tests' (tests/support/agent.py): the repository's
# root, which holds the tests package, joins the path wherever the bench runs from.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from tests.support.agent import agent_command


@contextmanager
def running_agent(
    config: Path,
    state_dir: Path,
    log: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The agent of ``config`` listening on a free loopback port, and its base URL.

    Its log is read to its end on a thread (a full pipe would stop the agent at its next
    line), into ``log`` when given. ``env``: its environment, when not this process's.
    """
    process = subprocess.Popen(
        agent_command(config, "--state-dir", str(state_dir)),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    reader = None
    try:
        assert process.stderr is not None
        said: list[str] = []
        match = None
        while match is None:
            line = process.stderr.readline()
            said.append(line)
            if not line:
                raise SystemExit(f"bench: the agent did not start: {''.join(said)[-2000:]}")
            match = re.search(r"listening on (http://\S+/)", line)
        if log is not None:
            log += said
        reader = threading.Thread(target=_read_all, args=(process.stderr, log), daemon=True)
        reader.start()
        yield process, match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=60)
        if reader is not None:
            reader.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def gc_probe_env(folder: Path) -> dict[str, str]:
    """This process's environment for a child whose processes time their garbage
    collections (bench/gc_probe) into ``folder``, one file per process."""
    here = Path(__file__).resolve().parent
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here / "gc_probe"), os.environ.get("PYTHONPATH", "")]),
        "WSPROBE_BENCH_GC_DIR": str(folder),
    }


def _read_all(stream: IO[str], lines: list[str] | None) -> None:
    for line in stream:
        if lines is not None:
            lines.append(line)


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants, now."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += map(int, (task / "children").read_text().split())
        except OSError:
            continue
        found.append(current)
    return found


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """``field`` of one process in MiB (0 when it has gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_mib(pid: int, field: str = "VmRSS") -> float:
    """``field`` summed over a process and its descendants (for the peak, VmHWM, the
    sum of each one's peak: an upper bound of the tree's)."""
    return sum(rss_mib(current, field) for current in tree_pids(pid))


def http_get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
        return body


def cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """User + system seconds of a process and (unless told not to) its descendants,
    living or reaped."""
    total = 0
    for current in tree_pids(pid) if descendants else [pid]:
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, and those of its children it has waited for (a replaced worker)
        total += sum(int(value) for value in fields[11 : 15 if descendants else 13])
    return total / os.sysconf("SC_CLK_TCK")
