"""The run's cache: time to live, copies, bounds, and the pending mark between scripts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wsprobe.errors import CacheError
from wsprobe.services.cache import MAX_VALUE_BYTES, PENDING_SECONDS, Cache


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_values_live_for_their_ttl_and_are_copies() -> None:
    clock = Clock()
    cache = Cache(clock=clock)

    async def scenario() -> list[Any]:
        value = {"status": "ativo", "usuarios": [150]}
        cache.put("status", value, 300)
        value["status"] = "changed after put"
        first = await cache.get("status", owner="a")
        first["usuarios"].append("changed after get")
        seen = [first, await cache.get("status", owner="b")]
        clock.now += 299.9
        seen.append(await cache.get("status", owner="a"))
        clock.now += 0.1
        seen.append(await cache.get("status", owner="a"))
        seen.append(await cache.get("never", owner="a"))
        return seen

    assert asyncio.run(scenario()) == [
        {"status": "ativo", "usuarios": [150, "changed after get"]},
        {"status": "ativo", "usuarios": [150]},
        {"status": "ativo", "usuarios": [150]},
        None,
        None,
    ]
    assert len(cache) == 0


def test_put_overwrites_and_delete_removes() -> None:
    cache = Cache()

    async def scenario() -> list[Any]:
        cache.put("k", 1, 60)
        cache.put("k", "two", 60)
        seen = [await cache.get("k", owner=None)]
        cache.delete("k")
        cache.delete("absent")
        seen.append(await cache.get("k", owner=None))
        return seen

    assert asyncio.run(scenario()) == ["two", None]
    assert cache.size == 0


PUT_ERRORS = [
    ("k", 1, 0, "cache.put: ttl must be a positive number of seconds, got 0"),
    ("k", 1, -5, "cache.put: ttl must be a positive number of seconds, got -5"),
    ("k", 1, float("inf"), "cache.put: ttl must be a positive number of seconds, got inf"),
    ("k", 1, None, "cache.put: ttl expected a number of seconds, got nil"),
    ("k", 1, True, "cache.put: ttl expected a number of seconds, got boolean"),
    ("k", 1, "soon", 'cache.put: ttl "soon" is not a number of seconds'),
    ("k", float("nan"), 5, "cache.put: value cannot be cached: NaN or infinity is not JSON"),
    ("k", "x" * MAX_VALUE_BYTES, 5, "cache.put: value larger than 1048576 bytes as JSON"),
]


@pytest.mark.parametrize(("key", "value", "ttl", "message"), PUT_ERRORS)
def test_put_errors(key: str, value: Any, ttl: Any, message: str) -> None:
    cache = Cache()
    with pytest.raises(CacheError) as caught:
        cache.put(key, value, ttl)
    assert str(caught.value) == message
    assert len(cache) == 0


def test_the_cache_is_bounded_by_entries_and_bytes() -> None:
    clock = Clock()
    cache = Cache(max_entries=3, max_bytes=1000, clock=clock)

    async def scenario() -> list[Any]:
        cache.put("old", 1, 10)
        cache.put("a", 1, 100)
        cache.put("b", 2, 100)
        clock.now += 20  # "old" has expired: it goes first
        await cache.get("a", owner=None)  # "a" is now the most recently used
        cache.put("c", 3, 100)
        seen = [len(cache)]
        cache.put("d", 4, 100)  # full: "b", the least recently used, goes
        seen += [await cache.get(key, owner=None) for key in ("a", "b", "c", "d")]
        cache.put("big", "x" * 994, 100)  # 999 bytes: the others go until it fits
        seen += [len(cache), cache.size <= 1000, await cache.get("big", owner=None) is not None]
        return seen

    assert asyncio.run(scenario()) == [3, 1, None, 3, 4, 1, True, True]


def test_a_pending_key_makes_others_wait_until_it_is_put() -> None:
    cache = Cache()
    events: list[str] = []

    async def computer() -> None:
        assert await cache.get("data", owner="computer") is None
        cache.mark_pending("data", owner="computer")
        # The marking script does not wait on its own mark.
        assert await cache.get("data", owner="computer") is None
        await asyncio.sleep(0.05)
        events.append("put")
        cache.put("data", {"n": 42}, 300)

    async def waiter(name: str) -> None:
        await asyncio.sleep(0.01)
        with pytest.raises(CacheError) as caught:
            cache.mark_pending("data", owner=name)
        assert str(caught.value) == "cache.mark_pending: key 'data' is already pending"
        value = await cache.get("data", owner=name)
        events.append(f"{name} got {value}")

    async def scenario() -> None:
        async with asyncio.timeout(5):
            await asyncio.gather(computer(), waiter("w1"), waiter("w2"))

    asyncio.run(scenario())
    assert events == ["put", "w1 got {'n': 42}", "w2 got {'n': 42}"]


def test_delete_or_release_wakes_the_waiters_with_what_is_there() -> None:
    cache = Cache()

    async def scenario() -> list[Any]:
        cache.put("deleted", "stale", 60)
        cache.mark_pending("deleted", owner="a")
        cache.put("kept", "old value", 60)
        cache.mark_pending("kept", owner="a")
        cache.mark_pending("other", owner="b")
        waiting = [asyncio.ensure_future(cache.get(key, owner="w")) for key in ("deleted", "kept")]
        await asyncio.sleep(0.01)
        assert not any(task.done() for task in waiting)
        cache.delete("deleted")
        cache.release("a")  # the script that marked "kept" ended without a put
        async with asyncio.timeout(5):
            seen = list(await asyncio.gather(*waiting))
        # b's mark stands: a release concerns one owner only.
        with pytest.raises(CacheError):
            cache.mark_pending("other", owner="c")
        return seen

    assert asyncio.run(scenario()) == [None, "old value"]


def test_a_mark_expires_after_its_time_and_can_be_renewed() -> None:
    clock = Clock()
    cache = Cache(clock=clock)

    async def scenario() -> list[Any]:
        cache.put("k", "v", 10_000)
        cache.mark_pending("k", owner="a")
        clock.now += PENDING_SECONDS - 1
        cache.mark_pending("k", owner="a")  # renewed by its owner
        clock.now += 2
        with pytest.raises(CacheError):
            cache.mark_pending("k", owner="b")
        clock.now += PENDING_SECONDS
        # Expired: b may mark it, and a reader does not wait on a dead mark.
        seen = [await cache.get("k", owner="c")]
        cache.mark_pending("k", owner="b")
        clock.now += PENDING_SECONDS + 1
        seen.append(await cache.get("k", owner="c"))
        return seen

    assert asyncio.run(scenario()) == ["v", "v"]


def test_a_waiting_get_ends_when_the_mark_expires() -> None:
    # A real clock, with the mark made to expire 0.1 s from now.
    cache = Cache()

    async def scenario() -> Any:
        cache.mark_pending("k", owner="a")
        cache._pending["k"].expires = asyncio.get_running_loop().time() + 0.1
        async with asyncio.timeout(5):
            return await cache.get("k", owner="b")

    assert asyncio.run(scenario()) is None


def test_a_value_larger_than_the_whole_cache_is_refused() -> None:
    cache = Cache(max_bytes=100)
    cache.put("small", 1, 60)
    with pytest.raises(CacheError, match=r"^cache.put: value larger than 100 bytes as JSON$"):
        cache.put("k", "x" * 100, 60)
    assert len(cache) == 1


def test_the_number_of_marks_is_bounded() -> None:
    cache = Cache(max_entries=2)
    cache.mark_pending("a", owner=1)
    cache.mark_pending("b", owner=1)
    with pytest.raises(CacheError, match=r"^cache.mark_pending: more than 2 keys pending$"):
        cache.mark_pending("c", owner=1)
    cache.release(1)
    cache.mark_pending("c", owner=1)
