"""The Lua↔Python contract: the prelude calls exactly what the registry serves, each
operation with as many arguments as it declares, and each handler takes those."""

from __future__ import annotations

import inspect
import re

import pytest

from wsprobe.lua.registry import IN_PLACE, REQUESTS, Operation
from wsprobe.lua.runtime import CHUNKS, chunk_source, prelude_source

# The prelude and every module it loads on first use.
PRELUDE = b"\n".join([prelude_source(), *map(chunk_source, CHUNKS)]).decode()
OPERATIONS = [*IN_PLACE.values(), *REQUESTS.values()]


def arguments_at(text: str, start: int) -> list[str]:
    """The arguments of the call whose opening parenthesis is at ``start``, split at
    its top-level commas (nested calls, tables and strings kept whole)."""
    assert text[start] == "("
    depth, quote, escaped = 0, "", False
    arguments, current = [], ""
    for char in text[start + 1 :]:
        if quote:
            if char == quote and not escaped:
                quote = ""
            escaped = char == "\\" and not escaped
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        arguments.append(current.strip())
    return arguments


def calls(pattern: str) -> list[tuple[str, int]]:
    """Each call the prelude makes matching ``pattern`` (its name in group 1, its
    opening parenthesis the first in the match), with its number of arguments."""
    found = []
    for match in re.finditer(pattern, PRELUDE):
        arguments = arguments_at(PRELUDE, match.start() + match[0].index("("))
        found.append((match[1], len(arguments)))
    return found


REQUEST_CALLS = [(name, count - 1) for name, count in calls(r'\brequest\("(\w+)"')]
HOST_CALLS = calls(r"\bhost\.(\w+)\(")


def test_the_scanner_counts_top_level_arguments() -> None:
    text = "f(a, g(b, c), {d, e}, \"f, (g\", 'h\\', i')"
    assert arguments_at(text, 1) == ["a", "g(b, c)", "{d, e}", '"f, (g"', "'h\\', i'"]
    assert arguments_at("f()", 1) == []


def test_the_prelude_requests_exactly_the_registered_operations() -> None:
    assert {name for name, _ in REQUEST_CALLS} == set(REQUESTS)


def test_the_prelude_calls_exactly_the_registered_host_functions() -> None:
    assert {name for name, _ in HOST_CALLS} == set(IN_PLACE)
    # Every use of a host function is a call (none is handed to a script).
    assert len(re.findall(r"\bhost\.\w+", PRELUDE)) == len(HOST_CALLS)


@pytest.mark.parametrize(("name", "count"), [*REQUEST_CALLS, *HOST_CALLS], ids=str)
def test_every_call_in_the_prelude_passes_the_declared_arguments(name: str, count: int) -> None:
    operation = REQUESTS.get(name) or IN_PLACE[name]
    assert count == len(operation.arguments), [argument.name for argument in operation.arguments]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.name)
def test_every_handler_takes_the_declared_arguments(operation: Operation) -> None:
    parameters = list(inspect.signature(operation.handler).parameters)[1:]
    assert parameters == [argument.name for argument in operation.arguments]
    assert all(argument.type.strip() for argument in operation.arguments)


def test_no_operation_is_both_in_place_and_a_request() -> None:
    assert not set(IN_PLACE) & set(REQUESTS)
