"""A worker's collector policy (lua.collector) on CPython's real collector: young
cycles freed as usual, no automatic full collection, an old cycle freed at the next
idle moment or once the old generation has grown past the bound."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from wsprobe.lua.collector import COUNT_EVERY, Collector


class _Node:
    """A tracked object that can take part in a cycle and be watched by weakref."""

    def __init__(self) -> None:
        self.other: object = None


@pytest.fixture(autouse=True)
def _restored_collector() -> Iterator[None]:
    # The policy changes the process's collector: the test process gets its own back.
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    gc.collect()


def _old_cycle() -> weakref.ref[_Node]:
    """A garbage cycle that reached the old generation: only a full collection frees it."""
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    # Alive through the young collections, so it is promoted to the old generation.
    gc.collect(1)
    assert any(item is first for item in gc.get_objects(2))
    return weakref.ref(first)


def _promote(count: int) -> list[_Node]:
    """``count`` live objects moved into the old generation, by as many middle
    collections as the policy waits for before it counts the old generation."""
    kept = [_Node() for _ in range(count)]
    for _ in range(COUNT_EVERY):
        gc.collect(1)
    return kept


def test_install_freezes_start_up_and_turns_automatic_full_collections_off() -> None:
    young = gc.get_threshold()[0]
    Collector().install()
    assert gc.get_freeze_count() > 0
    assert gc.get_objects(2) == []
    assert gc.isenabled()
    assert gc.get_threshold()[0] == young
    middle = gc.get_threshold()[1]
    # Young collections go on; however many, none becomes a full one.
    middles, full = gc.get_stats()[1]["collections"], gc.get_stats()[2]["collections"]
    kept = [_Node() for _ in range(young * middle * 30)]
    assert gc.get_stats()[1]["collections"] > middles
    assert gc.get_stats()[2]["collections"] == full
    del kept


def test_a_young_cycle_is_freed_by_the_young_collections() -> None:
    Collector().install()
    young, middle, _ = gc.get_threshold()
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    watched = weakref.ref(first)
    del first, second
    before = gc.get_stats()[0]["collections"]
    kept = []
    while gc.get_stats()[0]["collections"] == before:
        kept.append(_Node())
        assert len(kept) <= young * middle
    assert watched() is None


def _busy_with_an_old_cycle(
    bound: int, live: int
) -> tuple[Collector, weakref.ref[_Node], list[_Node]]:
    """A busy worker's collector with a garbage cycle and ``live`` objects in the old
    generation, below ``bound``: the cycle waits."""
    collector = Collector(bound=bound)
    collector.install()
    watched = _old_cycle()
    kept = _promote(live)
    assert collector.tick(idle=False) is False
    assert watched() is not None
    return collector, watched, kept


def test_an_old_cycle_waits_while_busy_and_goes_at_the_next_idle_moment() -> None:
    collector, watched, kept = _busy_with_an_old_cycle(10_000, 100)
    assert collector.tick(idle=True) is True
    assert watched() is None
    # Nothing reached the old generation since: an idle worker does not collect again.
    assert collector.tick(idle=True) is False
    del kept


def test_an_old_cycle_goes_while_busy_once_the_old_generation_passes_the_bound() -> None:
    collector, watched, kept = _busy_with_an_old_cycle(1_000, 900)
    kept += _promote(200)
    assert collector.tick(idle=False) is True
    assert watched() is None
    # The bound counts from what that collection left: the live objects kept do not
    # make every later tick a full collection.
    kept += _promote(900)
    assert collector.tick(idle=False) is False
    kept += _promote(200)
    assert collector.tick(idle=False) is True


def test_no_young_collection_since_the_last_full_one_means_nothing_to_do() -> None:
    collector = Collector(bound=0)
    collector.install()
    gc.collect()
    assert collector.tick(idle=True) is False
    assert collector.tick(idle=False) is False


def test_while_busy_the_old_generation_is_counted_only_every_few_promotions() -> None:
    collector = Collector(bound=1_000)
    collector.install()
    watched = _old_cycle()
    kept = [_Node() for _ in range(2_000)]
    for _ in range(COUNT_EVERY - 2):
        gc.collect(1)
    # Past the bound, but not counted yet: the next promotion makes it count.
    assert collector.tick(idle=False) is False
    assert watched() is not None
    gc.collect(1)
    assert collector.tick(idle=False) is True
    assert watched() is None
    del kept
