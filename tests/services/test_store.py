"""The store on real SQLite files: values, namespaces, errors, processes writing at once."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsprobe.errors import StoreError
from wsprobe.services.store import MAX_VALUE_BYTES, Store, default_state_dir

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    5,
    -(2**63),
    5.0,
    45.6,
    "",
    "Olá ✓",
    [],
    [1, "two", [3.0]],
    {"timeout": 30, "alertas": True, "nested": {"a": [None, 1]}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_reads_back_with_its_type_and_a_timestamp(tmp_path: Path, value: Any) -> None:
    async def scenario() -> tuple[Any, int | None]:
        store = Store(tmp_path)
        await store.put("store.put", "k", value, namespace="monitor")
        try:
            return await store.get("store.get", "k", namespace="monitor")
        finally:
            await store.close()

    before = int(time.time())
    got, stamp = asyncio.run(scenario())
    assert got == value
    assert type(got) is type(value)
    assert isinstance(stamp, int)
    assert before <= stamp <= time.time()


def test_namespaces_are_key_prefixes_as_the_page_says(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        store = Store(tmp_path)
        await store.put("store.put", "last", 1, namespace="monitor-cpu")
        await store.put("store.put", "last", 2, namespace="monitor-mem")
        await store.put("store.put_global", "last", 3, namespace=None)
        seen = [
            (await store.get("store.get", "last", namespace="monitor-cpu"))[0],
            (await store.get("store.get", "last", namespace="monitor-mem"))[0],
            (await store.get("store.get_global", "last", namespace=None))[0],
            (await store.get("store.get_global", "monitor-cpu:last", namespace=None))[0],
            await store.get("store.get", "last", namespace="other"),
        ]
        await store.delete("store.delete", "last", namespace="monitor-cpu")
        await store.delete("store.delete", "never-stored", namespace="monitor-cpu")
        seen.append(await store.get("store.get", "last", namespace="monitor-cpu"))
        seen.append((await store.get("store.get", "last", namespace="monitor-mem"))[0])
        await store.close()
        return seen

    assert asyncio.run(scenario()) == [1, 2, 3, 1, (None, None), (None, None), 2]


def test_values_survive_a_new_store_and_the_file_keeps_other_tables(tmp_path: Path) -> None:
    # The agent keeps its tables in the same file: they must be left alone.
    tmp_path.mkdir(exist_ok=True)
    with sqlite3.connect(tmp_path / "wsprobe.db") as agent:
        agent.execute("CREATE TABLE history (t REAL, v TEXT)")
        agent.execute("INSERT INTO history VALUES (1.5, 'x')")
    agent.close()

    async def write() -> None:
        store = Store(tmp_path)
        await store.put("store.put", "k", {"n": 1}, namespace="m")
        await store.close()

    async def read() -> Any:
        store = Store(tmp_path)
        try:
            return (await store.get("store.get", "k", namespace="m"))[0]
        finally:
            await store.close()

    asyncio.run(write())
    assert asyncio.run(read()) == {"n": 1}
    with sqlite3.connect(tmp_path / "wsprobe.db") as db:
        names = sorted(row for row in db.execute("SELECT type, name FROM sqlite_master"))
        assert names == [
            ("index", "script_store_owner"),
            ("table", "history"),
            ("table", "script_store"),
        ]
        assert db.execute("SELECT * FROM history").fetchall() == [(1.5, "x")]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_nothing_is_created_until_the_first_call_and_the_directory_is_private(
    tmp_path: Path,
) -> None:
    state = tmp_path / "deep" / "state"

    async def scenario() -> None:
        store = Store(state)
        await store.close()
        assert not state.exists()
        await store.put("store.put", "k", 1, namespace=None)
        await store.close()

    asyncio.run(scenario())
    assert (state / "wsprobe.db").is_file()
    assert state.stat().st_mode & 0o777 == 0o700


ERRORS = [
    ("store.put", "k" * 1025, 1, "store.put: key longer than 1024 characters"),
    (
        "store.put_global",
        "k",
        "x" * MAX_VALUE_BYTES,
        "store.put_global: value larger than 1048576 bytes as JSON",
    ),
    (
        "store.put",
        "k",
        float("nan"),
        "store.put: value cannot be stored: NaN or infinity is not JSON",
    ),
    (
        "store.put",
        "k",
        {1j},
        "store.put: value cannot be stored: a set is not JSON",
    ),
]


@pytest.mark.parametrize(("operation", "key", "value", "message"), ERRORS)
def test_refused_values_have_one_line_messages(
    tmp_path: Path, operation: str, key: str, value: Any, message: str
) -> None:
    async def scenario() -> None:
        store = Store(tmp_path)
        try:
            await store.put(operation, key, value, namespace=None)
        finally:
            await store.close()

    with pytest.raises(StoreError) as caught:
        asyncio.run(scenario())
    assert str(caught.value) == message
    assert not (tmp_path / "wsprobe.db").exists()


def test_an_unusable_state_dir_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def scenario() -> None:
        store = Store(blocker / "state")
        try:
            await store.get("store.get", "k", namespace="m")
        finally:
            await store.close()

    with pytest.raises(StoreError) as caught:
        asyncio.run(scenario())
    assert (
        str(caught.value) == f"store.get: cannot open {blocker}/state/wsprobe.db: not a directory"
    )


def test_a_row_written_by_another_program_is_reported_not_guessed(tmp_path: Path) -> None:
    asyncio.run(_put_and_close(tmp_path, "k", 1))
    with sqlite3.connect(tmp_path / "wsprobe.db") as db:
        db.execute("UPDATE script_store SET value = 'not json'")
    db.close()

    async def scenario() -> None:
        store = Store(tmp_path)
        try:
            await store.get("store.get_global", "k", namespace=None)
        finally:
            await store.close()

    with pytest.raises(
        StoreError, match=r"^store.get_global: the stored value of 'k' is not JSON$"
    ):
        asyncio.run(scenario())


async def _put_and_close(state: Path, key: str, value: Any) -> None:
    store = Store(state)
    await store.put("store.put", key, value, namespace=None)
    await store.close()


WRITER = """
import asyncio, sys
from pathlib import Path
from wsprobe.services.store import Store

async def main(state, worker):
    store = Store(Path(state))
    for i in range(150):
        await store.put("store.put", f"w{worker}-{i}", {"worker": worker, "i": i}, namespace="p")
        await store.put("store.put_global", "shared", worker, namespace=None)
        value, _ = await store.get("store.get", f"w{worker}-{i}", namespace="p")
        assert value == {"worker": worker, "i": i}, value
    await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_several_processes_write_at_once_and_nothing_is_lost(tmp_path: Path) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(n)], stderr=subprocess.PIPE
        )
        for n in range(4)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
    with sqlite3.connect(tmp_path / "wsprobe.db") as db:
        keys = {row[0] for row in db.execute("SELECT key FROM script_store")}
        shared = db.execute("SELECT value FROM script_store WHERE key = 'shared'").fetchone()
    db.close()
    expected = {f"p:w{n}-{i}" for n in range(4) for i in range(150)} | {"shared"}
    assert keys == expected
    assert shared[0] in {"0", "1", "2", "3"}


def test_many_calls_of_one_loop_at_once(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        store = Store(tmp_path)
        await asyncio.gather(
            *(store.put("store.put", f"k{i}", i, namespace="m") for i in range(200))
        )
        got = await asyncio.gather(
            *(store.get("store.get", f"k{i}", namespace="m") for i in range(200))
        )
        await store.close()
        return [value for value, _ in got]

    assert asyncio.run(scenario()) == list(range(200))


HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def _hold_write_lock(state: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state / "wsprobe.db"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_write_waiting_for_another_process_leaves_the_event_loop_free(tmp_path: Path) -> None:
    asyncio.run(_put_and_close(tmp_path, "k", 0))
    holder = _hold_write_lock(tmp_path, 1.0)

    async def scenario() -> tuple[int, Any]:
        store = Store(tmp_path)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        await store.put("store.put", "k", 1, namespace=None)
        ticking.cancel()
        value = await store.get("store.get", "k", namespace=None)
        await store.close()
        return ticks, value[0]

    ticks, value = asyncio.run(scenario())
    holder.wait(timeout=10)
    assert holder.stdout is not None
    holder.stdout.close()
    # The put waited about a second for the lock; meanwhile the loop ran on.
    assert ticks >= 20
    assert value == 1


def test_a_lock_held_past_the_busy_timeout_fails_the_call(tmp_path: Path) -> None:
    asyncio.run(_put_and_close(tmp_path, "k", 0))
    holder = _hold_write_lock(tmp_path, 2.0)

    async def scenario() -> None:
        store = Store(tmp_path, busy_seconds=0.2)
        try:
            await store.put("store.put", "k", 1, namespace=None)
        finally:
            await store.close()

    with pytest.raises(StoreError, match=r"^store.put: database is locked$"):
        asyncio.run(scenario())
    holder.wait(timeout=10)
    assert holder.stdout is not None
    holder.stdout.close()


STATE_DIRS = [
    ({"XDG_STATE_HOME": "/var/state", "HOME": "/home/u"}, "/var/state/wsprobe"),
    ({"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.local/state/wsprobe"),
    ({"XDG_STATE_HOME": "", "HOME": "/home/u"}, "/home/u/.local/state/wsprobe"),
    ({"HOME": "/root"}, "/root/.local/state/wsprobe"),
    ({"WSPROBE_STATE_DIR": "/srv/w", "XDG_STATE_HOME": "/var/state"}, "/srv/w"),
]


@pytest.mark.parametrize(("environ", "expected"), STATE_DIRS)
def test_default_state_dir(environ: dict[str, str], expected: str) -> None:
    assert default_state_dir(environ) == Path(expected)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    _containers,
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(key=st.text(max_size=50), value=JSON_VALUES)
def test_any_json_value_and_key_round_trip(tmp_path_factory: Any, key: str, value: Any) -> None:
    state = tmp_path_factory.mktemp("store")

    async def scenario() -> Any:
        store = Store(state)
        await store.put("store.put", key, value, namespace="m")
        try:
            return (await store.get("store.get", key, namespace="m"))[0]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == value


def test_each_monitor_holds_at_most_its_quota(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        store = Store(tmp_path, owner_bytes=1000)
        refused = []
        # "m:a" and 500 bytes of JSON: 503 bytes, counted for m.
        await store.put("store.put", "a", "x" * 498, namespace="m")
        for operation, key, size, namespace in [
            ("store.put", "b", 498, "m"),  # 1006 > 1000: refused
            ("store.put_global", "g", 498, None),  # a global key m writes counts for m
        ]:
            try:
                await store.put(operation, key, "x" * size, namespace=namespace, owner="m")
            except StoreError as exc:
                refused.append(str(exc))
        await store.put("store.put", "a", "x" * 900, namespace="m")  # replaces: 903 bytes
        await store.put("store.put", "a", "x" * 900, namespace="other")  # another monitor
        await store.delete("store.delete", "a", namespace="m")
        await store.put("store.put", "b", "x" * 900, namespace="m")  # room again
        await store.close()
        return refused

    assert asyncio.run(scenario()) == [
        "store.put: m would hold more than 1000 bytes in the store",
        "store.put_global: m would hold more than 1000 bytes in the store",
    ]
