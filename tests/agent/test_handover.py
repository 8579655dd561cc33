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
            await handover.wait()
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
        await handover.wait()
        late = asyncio.create_task(handover.wait())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not late.done()
        await late

    asyncio.run(scenario())


def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    async def scenario() -> None:
        handover = Handover(0.01)
        gone = asyncio.create_task(handover.wait())
        kept = asyncio.create_task(handover.wait())
        await asyncio.sleep(0)
        gone.cancel()
        await kept
        assert gone.cancelled()

    asyncio.run(scenario())


def test_a_delay_cut_by_the_end_of_its_loop_does_not_hold_the_next_loop() -> None:
    handover = Handover(0.2)

    async def cut() -> None:
        waiting = asyncio.create_task(handover.wait())
        await asyncio.sleep(0)
        waiting.cancel()

    asyncio.run(cut())  # ends long before the delay
    asyncio.run(asyncio.wait_for(handover.wait(), timeout=30))
