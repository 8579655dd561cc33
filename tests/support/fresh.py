"""Fresh interpreters for tests of what a process imports."""

from __future__ import annotations

import os
import subprocess
import sys

#: Set by coverage (``patch = ["subprocess"]``) so that child processes measure
#: themselves: its start-up imports ``inspect``, ``hashlib``, ``threading`` and more
#: before the program runs, which would hide what the program itself imports.
_COVERAGE = ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")


def unmeasured_environment() -> dict[str, str]:
    """This process's environment, without what starts coverage in a child."""
    return {name: value for name, value in os.environ.items() if name not in _COVERAGE}


def run_python(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with ``arguments`` in a fresh, unmeasured process; it must
    succeed (its standard error is the failure's message)."""
    done = subprocess.run(
        [sys.executable, *arguments],
        env=unmeasured_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done
