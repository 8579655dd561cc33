"""Run Autobahn|Testsuite cases (kosoku's fuzzing server) against `wsprobe run echo.lua`.

Used by the test suite (sections 1-7 and 10) and by `make conformance`
(`python tests/autobahn/fuzzing.py 9.* 12.* 13.*` prints a summary table).
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kosoku

ECHO = Path(__file__).resolve().parent / "echo.lua"
# Verdicts that mean a defect. UNIMPLEMENTED marks a feature the testee did not
# negotiate (kosoku counts it as "not passed" too, hence our own judgement).
DEFECTS = {"FAILED", "ERROR", "WRONG CODE", "UNCLEAN"}


@dataclass
class Run:
    """The outcome of one fuzzing run: kosoku's verdicts and the testee's exit."""

    results: list[Any]
    failed: bool
    returncode: int
    stdout: str
    stderr: str

    def summary(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter(
            (r.behavior.value, r.behavior_close.value) for r in self.results
        )

    def defects(self) -> list[tuple[str, str, str]]:
        return [case for case in self.not_ok() if {case[1], case[2]} & DEFECTS]

    def not_ok(self) -> list[tuple[str, str, str]]:
        return [
            (r.case_id, r.behavior.value, r.behavior_close.value)
            for r in self.results
            if (r.behavior.value, r.behavior_close.value) != ("OK", "OK")
        ]


def fuzz(cases: list[str], *, timeout: float = 600) -> Run:
    """Serve ``cases`` on loopback and let the Lua testee run them all."""

    async def main() -> Run:
        async with kosoku.run_fuzzingserver(cases, host="127.0.0.1", port=0) as server:
            url = f"ws://{server.address}:{server.port}"
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "wsprobe", "run",
                "--env", "AUTOBAHN_URL", "--script-timeout", str(timeout),
                "--memory-limit", "1024", "--instruction-limit", "100000", str(ECHO),
                env={**os.environ, "AUTOBAHN_URL": url},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            failed = False
            try:
                results = await asyncio.wait_for(server.get_result(), timeout)
            except kosoku.FailureError as failure:
                results, failed = failure.results, True
            stdout, stderr = await process.communicate()
        assert process.returncode is not None
        return Run(results, failed, process.returncode, stdout.decode(), stderr.decode())

    return asyncio.run(main())


def main() -> int:
    cases = sys.argv[1:] or ["9.*", "12.*", "13.*"]
    run = fuzz(cases)
    print(
        f"Autobahn cases {' '.join(cases)}: {len(run.results)} run, testee exit {run.returncode}"
    )
    print("| behavior | close | cases |\n|---|---|---|")
    for (behavior, close), count in sorted(run.summary().items()):
        print(f"| {behavior} | {close} | {count} |")
    for case_id, behavior, close in run.not_ok():
        print(f"  {case_id}: {behavior} / {close}")
    if run.stderr:
        print(run.stderr, file=sys.stderr)
    return 1 if run.defects() or run.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
