"""A declarative check that fails leaves nothing to the cycle collector: the agent
runs a full collection rarely (lua.collector), and a down service fails every run."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest

from tests.support.hostile import replies
from tests.support.net import http_reply, never_answers, unused_port
from tests.support.wire import RawHandler
from wsprobe.agent.config import Probe
from wsprobe.agent.prober import Check
from wsprobe.agent.websocket_prober import probe_websocket
from wsprobe.options import make_options
from wsprobe.plugin import State

# How the exchange fails -> the server that fails it (None: nothing listens).
FAILING: dict[str, RawHandler | None] = {
    "refused": None,
    "upgrade rejected": http_reply("HTTP/1.1 403 Forbidden", b"x" * 100_000),
    "timed out": never_answers,
    "reply too large": replies(b"x" * 2000),
}


@pytest.mark.parametrize("case", FAILING)
def test_a_failed_check_leaves_no_cycle(
    case: str, raw_server: Callable[[RawHandler], str]
) -> None:
    handler = FAILING[case]
    url = f"ws://127.0.0.1:{unused_port()}/" if handler is None else raw_server(handler)
    probe = Probe(make_options(timeout=0.2, max_size=1000))

    def check() -> State:
        run = Check(case, probe, url, 0.0, lambda line: None, lambda line, at: None)
        return asyncio.run(probe_websocket(run)).status

    assert check() is State.CRITICAL  # imports and caches made by a first run
    gc.disable()
    try:
        gc.collect()
        assert check() is State.CRITICAL
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = {type(item).__name__ for item in gc.garbage}
        # websockets' refusal and its response refer to each other: a few small
        # objects, their body emptied.
        assert not ({"frame", "coroutine"} & left), left
        assert not [item for item in gc.garbage if getattr(item, "body", None)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
