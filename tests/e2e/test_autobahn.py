"""The Autobahn|Testsuite's sections 1-7 and 10 against a Lua monitor script.

kosoku (PyPI) runs Autobahn's own case files as a fuzzing server on loopback; the
testee is `wsprobe run tests/autobahn/echo.lua`, echoing every message through
ws.connect. No case may end FAILED; NON-STRICT and INFORMATIONAL verdicts are
allowed and explained in docs/conformance.md.
"""

from __future__ import annotations

from tests.autobahn.fuzzing import fuzz

SECTIONS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
ACCEPTED = {
    ("OK", "OK"),
    ("NON-STRICT", "OK"),
    ("INFORMATIONAL", "INFORMATIONAL"),
    ("INFORMATIONAL", "OK"),
}


def test_autobahn_sections_1_to_7_and_10() -> None:
    run = fuzz(SECTIONS, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(len(run.results))
    assert len(run.results) == 247
    assert run.defects() == []
    assert [case for case in run.not_ok() if (case[1], case[2]) not in ACCEPTED] == []
    assert not run.failed
