"""The run's cache as the supervisor serves it to every worker (lua.cacheserver):
the marks of a script end with it, whether or not it made any."""

from __future__ import annotations

import asyncio

from wsprobe.lua.cacheserver import CacheServer
from wsprobe.lua.wire import CacheAnswer, CacheCall


def test_a_scripts_marks_end_with_it_and_an_unmarking_script_ends_quietly() -> None:
    async def scenario() -> list[CacheAnswer]:
        server = CacheServer()
        answers: list[CacheAnswer] = []

        def fail() -> None:
            raise AssertionError("a well-formed call was refused")

        server.serve(CacheCall(1, "mark_pending", "k", 7, []), answers.append, fail)
        server.serve(CacheCall(2, "put", "other", 8, ["v", 60]), answers.append, fail)
        async with asyncio.timeout(5):
            while len(answers) < 2:
                await asyncio.sleep(0)
        server.serve(CacheCall(3, "get", "k", 9, []), answers.append, fail)
        await asyncio.sleep(0.01)
        # The get waits on script 7's mark; script 8 marked nothing.
        assert len(answers) == 2
        server.release(8)
        await asyncio.sleep(0.01)
        assert len(answers) == 2
        server.release(7)
        async with asyncio.timeout(5):
            while len(answers) < 3:
                await asyncio.sleep(0)
        server.close()
        return answers

    answers = asyncio.run(scenario())
    assert sorted(answers) == [
        CacheAnswer(1, True, None),
        CacheAnswer(2, True, None),
        CacheAnswer(3, True, None),
    ]
