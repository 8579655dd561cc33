"""Scheduled scripts go to the workers together: the callers waiting on a handover
are released in one turn of the event loop, the first held for the others."""

from __future__ import annotations

import asyncio

from wsprobe.agent.handover import Handover


def test_the_callers_of_one_delay_are_released_together() -> None:
    async def scenario() -> list[str]:
        handover = Handover(0.01)
        released: list[str] = []

        async def script(name: str) -> None:
            await handover.wait(1.0)
            released.append(name)

        first = asyncio.create_task(script("first"))
        for _ in range(3):
            await asyncio.sleep(0)
        assert released == []  # held for the others
        second = asyncio.create_task(script("second"))
        await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        assert first.done()
        assert second.done()  # in the same turn
        return released

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_caller_after_a_release_waits_for_the_next() -> None:
    async def scenario() -> None:
        handover = Handover(0.01)
        await handover.wait(1.0)
        late = asyncio.create_task(handover.wait(1.0))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not late.done()
        await late

    asyncio.run(scenario())


def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    async def scenario() -> None:
        handover = Handover(0.01)
        gone = asyncio.create_task(handover.wait(1.0))
        kept = asyncio.create_task(handover.wait(1.0))
        await asyncio.sleep(0)
        gone.cancel()
        await kept
        assert gone.cancelled()

    asyncio.run(scenario())


def test_a_delay_cut_by_the_end_of_its_loop_does_not_hold_the_next_loop() -> None:
    handover = Handover(0.2)

    async def cut() -> None:
        waiting = asyncio.create_task(handover.wait(1.0))
        await asyncio.sleep(0)
        waiting.cancel()

    asyncio.run(cut())  # ends long before the delay
    asyncio.run(asyncio.wait_for(handover.wait(1.0), timeout=30))


def test_a_caller_that_cannot_wait_for_the_current_delay_goes_at_once() -> None:
    async def scenario() -> None:
        handover = Handover(3600)
        held = asyncio.create_task(handover.wait(3600))
        await asyncio.sleep(0)
        await asyncio.wait_for(handover.wait(0.001), timeout=30)
        assert not held.done()
        held.cancel()

    asyncio.run(scenario())


def test_the_first_caller_sets_the_delay_within_what_it_may_wait() -> None:
    async def scenario() -> None:
        await asyncio.wait_for(Handover(3600).wait(0.001), timeout=30)

    asyncio.run(scenario())
