"""Hypothesis strategies shared by the property-based suites (tests/test_fuzz_*.py).

Every generated URL that can reach the network points at loopback only: hosts are
``127.0.0.1``, ``[::1]`` or ``localhost`` (``/etc/hosts``), and the user name of a
``user:password@`` part is ``127.0.0.1``, so that a password holding ``/``, ``?``
or ``#`` (which ends the authority early) still leaves a loopback host.

Secrets are drawn with a marker and at least six random characters, so that one
appearing in any output is a leak, not a coincidence.
"""

from __future__ import annotations

import os
import string
from typing import Any
from urllib.parse import quote, unquote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "FUZZ",
    "SECRET_ALPHABET",
    "call_options",
    "close_codes",
    "close_reasons",
    "header_values",
    "headers",
    "leaks",
    "odd_values",
    "secrets",
    "urls",
]

#: The fixed budget of every property: derandomized, so a run is reproducible.
FUZZ = settings(
    max_examples=int(os.environ.get("WSPROBE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)

# Characters a password may hold, those that end a URL's authority included.
SECRET_ALPHABET = string.ascii_letters + string.digits + "/?#@:%!$&'()*+,;=-._~é"

secrets = st.text(SECRET_ALPHABET, min_size=6, max_size=16).map(lambda s: "Zq" + s)


def leaks(secret: str, *texts: str) -> bool:
    """True when ``secret`` (as is, or percent-encoded/decoded) appears in a text."""
    forms = {secret, unquote(secret), quote(secret, safe="")}
    return any(form in text for form in forms for text in texts if len(form) >= 6)


def urls(base_ports: list[int], secret: str | None) -> st.SearchStrategy[str]:
    """URLs of every shape around loopback hosts; ``secret`` as a password when given."""
    scheme = st.sampled_from(["ws://", "wss://", "WS://", "http://", "ws:/", "//", "ws:", ""])
    host = st.sampled_from(["127.0.0.1", "[::1]", "localhost", "", "[::1", "127.0.0.1:"])
    port = st.one_of(
        st.sampled_from([f":{p}" for p in base_ports]),
        st.sampled_from(["", ":0", ":70000", ":-1", ":x", ":1"]),
    )
    path = st.one_of(
        st.sampled_from(["", "/", "/close1008", "/binary", "/fragments", "/big", "/close"]),
        st.text(max_size=12).map(lambda t: "/" + t),
    )
    tail = st.sampled_from(["", "?a=1", "#frag", "?", "#", " x", "\n", "\x00"])
    userinfo = (
        st.just("")
        if secret is None
        else st.sampled_from([f"127.0.0.1:{secret}@", f"127.0.0.1:{quote(secret, safe='')}@"])
    )
    return st.tuples(scheme, userinfo, host, port, path, tail).map("".join)


def odd_values() -> st.SearchStrategy[Any]:
    """Values of every Python type an option might wrongly be given."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.binary(max_size=10),
        st.lists(st.text(max_size=5), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    )


def header_values(secret: str) -> st.SearchStrategy[str]:
    """Credential-like header values carrying ``secret``."""
    return st.sampled_from(
        [f"Bearer {secret}", f"Basic {secret}", f"session={secret}; theme=dark", secret]
    )


def headers(secret: str) -> st.SearchStrategy[Any]:
    """Header options: credential headers with ``secret`` values, odd names and values."""
    name = st.one_of(
        st.sampled_from(["Authorization", "Cookie", "X-Api-Key", "authorization", "Host"]),
        st.sampled_from(["Upgrade", "Sec-WebSocket-Key", "bad name", "", "X:y", "é"]),
        st.text(max_size=8),
    )
    value = st.one_of(header_values(secret), st.text(max_size=10), odd_values())
    pairs = st.lists(st.tuples(name, value), max_size=3)
    return st.one_of(
        st.none(),
        pairs,
        pairs.map(dict),
        odd_values(),
        st.lists(st.one_of(st.tuples(name), st.tuples(name, value, value)), max_size=2),
    )


def call_options(secret: str, cafile: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword options of a call: each absent, valid or wrong."""
    timeout = st.one_of(
        st.sampled_from([0, -1, 1e10, 1e300, float("nan"), float("inf"), "2", "x", True]),
        st.floats(min_value=1e-6, max_value=5),
        st.floats(min_value=5),
        odd_values(),
    )
    max_size = st.one_of(
        st.sampled_from([0, -5, 10**25, 2**63, 2**63 - 1, 1.0, 2.5, "10", float("nan")]),
        st.integers(min_value=1, max_value=2**70),
        odd_values(),
    )
    subprotocols = st.one_of(
        st.lists(st.sampled_from(["chat", "bad name", "", "a,b", "x"]), max_size=3), odd_values()
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "timeout": timeout,
            "headers": headers(secret),
            "subprotocols": subprotocols,
            "origin": st.one_of(st.text(max_size=10), odd_values(), header_values(secret)),
            "cafile": st.one_of(st.just(cafile), st.text(max_size=10), odd_values()),
            "insecure": st.one_of(st.booleans(), odd_values()),
            "max_size": max_size,
            "compression": st.one_of(st.booleans(), odd_values()),
        },
    )


close_codes = st.one_of(
    st.integers(min_value=-1, max_value=70000),
    st.sampled_from([1000, 1005, 1006, 1015, 2999, 3000, 4999, 5000, 1.5, 1000.0, 2**64]),
    odd_values(),
)
close_reasons = st.one_of(
    st.text(max_size=130),
    st.text(string.ascii_letters, min_size=120, max_size=130),
    st.sampled_from(["é" * 62, "\ud800", ""]),
    odd_values(),
)
