"""The Lua pipeline's stages: a script run in-process ends as it does in a worker, and
what crosses the process boundary survives the trip (and nothing malformed does)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import Run
from tests.support.lua import run_lua
from wsprobe.lua import wire
from wsprobe.lua.job import Job
from wsprobe.lua.output import RECORD_FIELDS, Line, ScriptOutcome
from wsprobe.models import Timings
from wsprobe.options import make_options

SCRIPTS = [
    "return 42",
    'return {value = 7, status = "MetricWarning"}',
    'return {value = 1, status = "MetricBogus"}',
    'error("broken")',
    "local x = ",
    'signal("RepeatPrevValue")',
    "return ws.send_recv(nil, 'x')",
    "while true do end",
    "local t = {} while true do t[#t + 1] = string.rep('x', 1000) end",
]


@pytest.mark.parametrize("source", SCRIPTS)
def test_a_script_in_process_ends_as_in_a_worker(run: Run, source: str) -> None:
    flags = ("--json", "--instruction-limit", "1", "--memory-limit", "8")
    _, out, _ = run.lua(source, *flags)
    in_worker = json.loads(out)
    ran = run_lua(source, instruction_limit=1_000_000, memory_limit_mib=8)
    in_process = {name: getattr(ran.outcome, name) for name in RECORD_FIELDS}
    del in_worker["duration"], in_process["duration"]
    assert in_process == {name: in_worker[name] for name in in_process}
    assert in_worker["name"] == ran.outcome.name == "check.lua"


def test_lines_are_kept_in_order_with_their_kind() -> None:
    ran = run_lua("print('a', 1)\nlog.warn('careful')\nprint('b')\nreturn true")
    assert [(line.kind, line.text) for line in ran.lines] == [
        ("print", "a\t1"),
        ("warn", "careful"),
        ("print", "b"),
    ]
    assert (ran.printed, ran.logged, ran.outcome.result) == (
        "a\t1\nb\n",
        [("warn", "careful")],
        True,
    )


# --- the wire ---


def test_a_record_survives_the_trip_up() -> None:
    timings = Timings(0.001, 0.002, None, 0.003, 0.004, 0.01)
    outcome = ScriptOutcome(
        "ignored",
        ok=False,
        result={"a": [1, 2]},
        error="check.lua:1: no",
        duration=0.5,
        status="critical",
        value=3,
        signal=None,
        calls=[timings],
    )
    lines = [Line("print", "hello", 1.5), Line("warn", "olá", 2.5)]
    [decoded] = wire.decode(wire.up_line([wire.encode_finished(7, outcome, lines)]))
    assert isinstance(decoded, wire.Finished)
    assert (decoded.number, decoded.lines) == (7, lines)
    outcome.name = ""
    assert decoded.outcome == outcome


def test_a_cache_call_survives_the_trip_up() -> None:
    line = wire.up_line([wire.encode_cache_call(3, "put", "k", 9, "v", 5)])
    assert wire.decode(line) == [wire.CacheCall(3, "put", "k", 9, ["v", 5])]


def test_the_messages_of_one_turn_go_up_in_one_line_in_order() -> None:
    first = wire.encode_finished(1, ScriptOutcome("x", ok=True), [])
    call = wire.encode_cache_call(2, "get", "k", 1)
    second = wire.encode_finished(3, ScriptOutcome("y", ok=False, error="e"), [])
    line = wire.up_line([first, call, second])
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    decoded = wire.decode(line)
    assert [type(message) for message in decoded] == [wire.Finished, wire.CacheCall, wire.Finished]
    assert [message.number for message in decoded] == [1, 2, 3]


def test_every_field_sent_up_is_checked_on_its_way_in() -> None:
    assert set(wire._DECODE) == {*RECORD_FIELDS, "calls"}
    assert [name for name, _check in wire._SENT] == [*RECORD_FIELDS, "calls"]


GOOD = json.loads(wire.encode_finished(1, ScriptOutcome("x", ok=True), []))
# Where each field sits in a record: its number first, then the fields, calls, lines.
AT = {name: index for index, name in enumerate(("id", *RECORD_FIELDS, "calls", "lines"))}


def _with(name: str, value: object) -> bytes:
    record = list(GOOD)
    record[AT[name]] = value
    return json.dumps(record).encode()


MALFORMED_MESSAGES = [
    b"not json",
    b"[]",
    b"3",
    b'{"ok": true}',
    _with("status", "fine"),
    _with("error", 3),
    _with("signal", ["x"]),
    _with("duration", "soon"),
    _with("calls", [[1, 2]]),
    _with("lines", [["print", "x"]]),
    _with("id", "1"),
    _with("id", True),
    json.dumps(GOOD[:-1]).encode(),
    json.dumps([*GOOD, []]).encode(),
    b'["cache", 1, "drop_all", "k", 1]',
    b'["cache", "1", "get", "k", 1]',
    b'["cache", 1, "get", 2, 1]',
    b'["cache", 1, "get"]',
]
GOOD_LINE = json.dumps(GOOD).encode()


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        GOOD_LINE,
        b'{"cache": [1, "get", "k", 1]}',
        b"[" + GOOD_LINE + b"]]",
        b"[" + GOOD_LINE + b",]",
        *(wire.up_line([GOOD_LINE, message]) for message in MALFORMED_MESSAGES),
    ],
)
def test_what_does_not_decode_raises(line: bytes) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        wire.decode(line)


def test_an_empty_line_of_messages_decodes_to_none() -> None:
    assert wire.decode(b"[]") == []


def test_frames_down_carry_any_picklable_value() -> None:
    options = make_options(timeout=3, headers={"X-A": "b"})
    job = Job("a.lua", "/x/a.lua", b"return 1", {"A": "1"}, 2.5, options)
    start = wire.Start(4, job)
    answer = wire.CacheAnswer(5, True, {"x": 1})

    async def read() -> list[object]:
        reader = asyncio.StreamReader()
        reader.feed_data(wire.frame([start, answer]) + wire.frame(answer))
        reader.feed_eof()
        return [await wire.read_frame(reader) for _ in range(3)]

    assert asyncio.run(read()) == [[start, answer], answer, None]


def test_what_is_ready_in_one_turn_of_the_loop_goes_in_one_write() -> None:
    writes: list[bytes] = []

    async def scenario() -> None:
        outbox = wire.Outbox(writes.append, b"|".join)
        outbox.put(b"a")
        outbox.put(b"b")
        await asyncio.sleep(0)
        outbox.put(b"c")
        outbox.flush()
        outbox.flush()
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert writes == [b"a|b", b"c"]


@pytest.mark.parametrize(
    ("sent", "reads"),
    [
        (b"one\ntwo\n", [[b"one", b"two"], []]),
        (b"whole\nhalf", [[b"whole", b"half"], []]),
        (b"", [[]]),
    ],
)
def test_lines_up_are_read_as_many_as_came(sent: bytes, reads: list[list[bytes]]) -> None:
    async def scenario() -> list[list[bytes]]:
        reader = asyncio.StreamReader()
        reader.feed_data(sent)
        reader.feed_eof()
        return [await wire.read_lines(reader) for _ in reads]

    assert asyncio.run(scenario()) == reads


def test_a_line_up_longer_than_the_limit_is_malformed() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader(limit=8)
        reader.feed_data(b"x" * (1 << 16) + b"y" * 20)
        await wire.read_lines(reader)

    with pytest.raises(ValueError, match="a line too long"):
        asyncio.run(scenario())


def test_the_board() -> None:
    board = wire.Board(bytearray(wire.Board.size(3)), 3)
    assert (board.heartbeat(), board.running()) == (0.0, [])
    board.beat(12.5)
    board.mark(1, 42, 99.5)
    board.mark(2, 43, 100.5)
    assert board.heartbeat() == 12.5
    assert board.running() == [(42, 99.5), (43, 100.5)]
    board.clear(1)
    assert (board.read(0), board.read(1), board.read(2)) == (None, None, (43, 100.5))


ENDINGS = [
    'print("x", json.encode({a = {1, 2}})) log.info("y") return json.decode("[1, {}]")',
    'local t = setmetatable({}, {__tostring = function() return "t" end}) return t',
    "error({})",
    'signal("RepeatPrevValue")',
    "local ok = pcall(ws.send_recv, nil) return os.getenv('HOME'), time.parse('x')",
    "while true do end",
]


def test_a_script_that_ended_leaves_nothing_to_the_cycle_collector() -> None:
    # Its Lua state and its Python side are freed by reference counting: a worker
    # running thousands of scripts has no collector pauses to feel.
    import gc

    from wsprobe.lua.eventloop import run_event_loop
    from wsprobe.lua.execute import RunContext, inline_step, run_collected
    from wsprobe.lua.job import RunSettings
    from wsprobe.services.shared import RunServices

    settings = RunSettings(options=make_options(), instruction_limit=10**6)

    async def scenario() -> list[int]:
        services = RunServices(settings.options)
        run = RunContext(settings)
        found = []
        for source in ENDINGS:
            job = Job("cycles.lua", source=source.encode())
            await run_collected(job, run, run_step=inline_step, services=services)
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    await run_collected(job, run, run_step=inline_step, services=services)
                found.append(gc.collect())
            finally:
                gc.enable()
        await services.close()
        return found

    assert run_event_loop(scenario()) == [0] * len(ENDINGS)
