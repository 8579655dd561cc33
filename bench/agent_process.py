"""A `wsprobe agent` process for the bench: started on a configuration, its URL read
from its log, stopped by its PID."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_agent(config: Path, state_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The agent of ``config`` listening on a free loopback port, and its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsprobe",
            "agent",
            str(config),
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state_dir),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
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
        yield process, match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=60)
        if process.stderr is not None:
            process.stderr.close()
