"""The Lua↔Python contract: what the prelude calls is exactly what the registry serves."""

from __future__ import annotations

import re
from importlib.resources import files

from wsprobe.lua.registry import IN_PLACE, REQUESTS

PRELUDE = files("wsprobe.lua").joinpath("prelude.lua").read_text()


def test_the_prelude_requests_exactly_the_registered_operations() -> None:
    requested = set(re.findall(r'\brequest\("(\w+)"', PRELUDE))
    assert requested == set(REQUESTS)


def test_the_prelude_calls_exactly_the_registered_host_functions() -> None:
    called = set(re.findall(r"\bhost\.(\w+)", PRELUDE))
    assert called == set(IN_PLACE)


def test_every_operation_documents_its_arguments() -> None:
    for operation in [*IN_PLACE.values(), *REQUESTS.values()]:
        assert operation.arguments.strip(), operation.name
    assert not set(IN_PLACE) & set(REQUESTS)
