"""Happy Eyeballs (RFC 8305) in both transports, with real sockets on loopback.

A silent address is made honestly: a listening socket whose accept queue is full.
Linux then drops further SYNs, so a connect() to it stays pending exactly as one
to a host behind a broken route does (the fixture proves it before each test).
The resolver cannot return such an address for a loopback name without editing
``/etc/hosts``, so the tests hand the address list to ``connect_first``, the
transports' racing function just below ``Connection.open``, which takes the
resolver's list from there.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import descriptors_settle_to, open_descriptors
from tests.support.net import unused_port
from wsprobe.protocol import asyncio as async_transport
from wsprobe.protocol import sync
from wsprobe.protocol.addresses import ATTEMPT_DELAY, Address, interleave
from wsprobe.protocol.deadline import Deadline

V4 = socket.AF_INET
V6 = socket.AF_INET6


def v4(port: int) -> Address:
    return (V4, ("127.0.0.1", port))


def v6(port: int) -> Address:
    return (V6, ("::1", port, 0, 0))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        ([v6(1), v6(2), v4(3), v4(4)], [v6(1), v4(3), v6(2), v4(4)]),
        ([v4(3), v6(1), v6(2)], [v4(3), v6(1), v6(2)]),
        ([v4(1), v4(2), v4(3), v6(4)], [v4(1), v6(4), v4(2), v4(3)]),
        ([v6(1)], [v6(1)]),
    ],
)
def test_interleave_alternates_families_from_the_first(
    given: list[Address], expected: list[Address]
) -> None:
    assert interleave(given) == expected


@pytest.fixture
def black_hole() -> Iterator[Address]:
    """An address on 127.0.0.1 whose connect() stays pending: a full accept queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = v4(listener.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address[1])
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.3)
    with pytest.raises(TimeoutError):
        probe.connect(address[1])  # the proof that it is silent
    probe.close()
    yield address
    for sock in [*fillers, listener]:
        sock.close()


@pytest.fixture
def listening() -> Iterator[Address]:
    """An address that accepts connections (the kernel completes the handshake)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield v4(server.getsockname()[1])


def race_sync(addresses: list[Address], timeout: float) -> tuple[Address | str, float]:
    started = time.monotonic()
    try:
        sock, address = sync.connect_first(addresses, Deadline(timeout))
    except OSError as exc:
        return type(exc).__name__, time.monotonic() - started
    sock.close()
    return address, time.monotonic() - started


def race_async(addresses: list[Address], timeout: float) -> tuple[Address | str, float]:
    async def run() -> Address | str:
        try:
            async with asyncio.timeout(timeout):
                sock, address = await async_transport.connect_first(
                    asyncio.get_running_loop(), addresses
                )
        except OSError as exc:
            return type(exc).__name__
        sock.close()
        return address

    started = time.monotonic()
    outcome = asyncio.run(run())
    return outcome, time.monotonic() - started


Race = Callable[[list[Address], float], tuple[Address | str, float]]
RACES = [pytest.param(race_sync, id="sync"), pytest.param(race_async, id="async")]


@pytest.mark.parametrize("race", RACES)
def test_a_silent_first_address_hands_over_after_the_delay(
    race: Race, black_hole: Address, listening: Address
) -> None:
    before = open_descriptors()
    winner, elapsed = race([black_hole, listening], 5)
    assert winner == listening
    # The second attempt starts 250 ms after the first, not after the timeout.
    assert ATTEMPT_DELAY <= elapsed < 2
    # The silent attempt was closed: no descriptor is left behind.
    assert descriptors_settle_to(before)


@pytest.mark.parametrize("race", RACES)
def test_a_failed_attempt_hands_over_at_once(
    race: Race, black_hole: Address, listening: Address
) -> None:
    refused = v4(unused_port())
    winner, elapsed = race([refused, listening], 5)
    assert winner == listening
    assert elapsed < ATTEMPT_DELAY


@pytest.mark.parametrize("race", RACES)
def test_the_first_to_connect_wins_even_when_started_later(
    race: Race, black_hole: Address, listening: Address
) -> None:
    winner, _ = race([black_hole, black_hole, listening], 5)
    assert winner == listening


@pytest.mark.parametrize("race", RACES)
def test_the_deadline_bounds_the_whole_race(race: Race, black_hole: Address) -> None:
    before = open_descriptors()
    outcome, elapsed = race([black_hole, black_hole], 0.6)
    assert outcome == "TimeoutError"
    assert 0.6 <= elapsed < 1.2
    assert descriptors_settle_to(before)


@pytest.mark.parametrize("race", RACES)
def test_when_every_address_fails_the_last_failure_is_raised(race: Race) -> None:
    outcome, _ = race([v4(unused_port()), v4(unused_port())], 5)
    assert outcome == "ConnectionRefusedError"
