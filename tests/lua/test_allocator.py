"""Workers run with jemalloc preloaded when it is installed, unless turned off, and
keep whatever the operator preloads and configures."""

from __future__ import annotations

import asyncio
import logging
import os
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import wait_for_workers
from wsprobe.lua.allocator import SWITCH, TUNING, jemalloc, worker_environment
from wsprobe.lua.eventloop import run_event_loop
from wsprobe.lua.job import Job, RunSettings
from wsprobe.lua.supervisor import Supervisor
from wsprobe.options import make_options

LIBRARY = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
#: A library of glibc's that Python does not load, for the operator to preload.
OWN = str(Path("/usr/lib", sysconfig.get_config_var("MULTIARCH"), "libanl.so.1"))
#: The operator's preloads in the longest variable a process can be started with:
#: with jemalloc's path added, the kernel would refuse to start the worker.
CROWDED = ":" * (32 * os.sysconf("SC_PAGE_SIZE") - len("LD_PRELOAD=") - 1 - len(OWN)) + OWN


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, {"LD_PRELOAD": LIBRARY, "MALLOC_CONF": TUNING}),
        ({"LD_PRELOAD": "/opt/a.so"}, {"LD_PRELOAD": f"/opt/a.so {LIBRARY}"}),
        ({"LD_PRELOAD": "/opt/a.so:/opt/b.so"}, {"LD_PRELOAD": f"/opt/a.so:/opt/b.so {LIBRARY}"}),
        ({"LD_PRELOAD": "  "}, {"LD_PRELOAD": LIBRARY}),
        ({"MALLOC_CONF": "narenas:4"}, {"LD_PRELOAD": LIBRARY, "MALLOC_CONF": "narenas:4"}),
        ({SWITCH: "1"}, {"LD_PRELOAD": LIBRARY}),
        ({SWITCH: ""}, {"LD_PRELOAD": LIBRARY}),
        ({SWITCH: "0"}, None),
        ({SWITCH: " 0\n"}, None),
        ({"LD_PRELOAD": f"/opt/a.so:{LIBRARY}"}, None),
        ({"LD_PRELOAD": f"{LIBRARY} /opt/a.so"}, None),
        ({"LD_PRELOAD": CROWDED}, None),
    ],
)
def test_the_environment_of_a_worker(
    environ: dict[str, str], wanted: dict[str, str] | None
) -> None:
    made = worker_environment({"PATH": "/bin", **environ}, LIBRARY)
    if wanted is None:
        assert made is None
    else:
        assert made is not None
        assert made == {"PATH": "/bin", "MALLOC_CONF": TUNING, **environ, **wanted}


def test_without_the_library_a_worker_keeps_the_supervisors_environment() -> None:
    assert worker_environment({"LD_PRELOAD": "/opt/a.so"}, None) is None


def _worker_maps() -> tuple[str, str]:
    """A real worker's memory map and ``LD_PRELOAD``."""

    async def scenario() -> tuple[str, str]:
        settings = RunSettings(options=make_options(), workers=1, concurrency=1)
        async with Supervisor(settings) as supervisor:
            outcome, _ = await supervisor.run(Job("a.lua", source=b"return #string.rep('x', 99)"))
            assert outcome.result == 99
            (worker,) = wait_for_workers(os.getpid(), 1)
            variables = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
            preload = [v.decode() for v in variables if v.startswith(b"LD_PRELOAD=")]
            return Path(f"/proc/{worker}/maps").read_text(), "".join(preload)

    return run_event_loop(scenario())


@pytest.fixture
def library() -> str:
    found = jemalloc()
    if found is None:
        pytest.fail("jemalloc not found: `make test` installs Debian's libjemalloc2 package")
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("environ", "preload", "mapped", "unmapped"),
    [
        ({}, "LD_PRELOAD={library}", ["libjemalloc.so"], []),
        ({SWITCH: "0"}, "", [], ["libjemalloc.so"]),
        ({"LD_PRELOAD": OWN}, f"LD_PRELOAD={OWN} {{library}}", [OWN, "libjemalloc.so"], []),
        ({"LD_PRELOAD": CROWDED}, f"LD_PRELOAD={CROWDED}", [OWN], ["libjemalloc.so"]),
    ],
    ids=[
        "jemalloc by default",
        "jemalloc turned off",
        "the operator's preloads kept",
        "no room left for jemalloc",
    ],
)
def test_what_a_real_worker_preloads_and_maps(
    environ: dict[str, str],
    preload: str,
    mapped: list[str],
    unmapped: list[str],
    library: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python does not load the operator's library: mapped in a worker only if preloaded.
    assert OWN not in Path("/proc/self/maps").read_text()
    for name in (SWITCH, "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    maps, seen = _worker_maps()
    assert seen == preload.format(library=library)
    assert [name for name in mapped if name not in maps] == []
    assert [name for name in unmapped if name in maps] == []


@pytest.mark.slow
@pytest.mark.usefixtures("library")
def test_workers_that_jemalloc_aborts_at_start_fail_their_scripts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # jemalloc aborts the worker before Python starts: the supervisor may find its
    # standard input closed already when it sends the settings, or a script.
    monkeypatch.delenv(SWITCH, raising=False)
    monkeypatch.setenv("MALLOC_CONF", "abort_conf:true,no_such_option:1")

    async def scenario() -> list[str | None]:
        settings = RunSettings(options=make_options(), workers=2, concurrency=8)
        async with Supervisor(settings) as supervisor:
            jobs = [Job(f"{n}.lua", source=b"return 1") for n in range(8)]
            finished = await asyncio.gather(*(supervisor.run(job) for job in jobs))
        return [outcome.error for outcome, _ in finished]

    for _ in range(3):  # how soon the worker dies varies: each round another race
        errors = run_event_loop(scenario())
        assert errors == ["script lost its worker twice: killed by SIGABRT"] * 8


def test_workers_that_die_before_starting_are_replaced_ever_more_slowly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An interpreter that exits at once stands for any environment a worker cannot
    # start in (a MALLOC_CONF jemalloc rejects, a broken installation): without a
    # delay the supervisor would start hundreds of workers a second, for ever.
    monkeypatch.setattr("wsprobe.lua.supervisor.sys.executable", "/bin/false")
    # import-linter's command (tests/e2e/test_architecture.py) configures logging with
    # dictConfig, which disables every logger that exists by then.
    monkeypatch.setattr(logging.getLogger("wsprobe.lua.supervisor"), "disabled", False)
    caplog.set_level("WARNING", logger="wsprobe.lua.supervisor")

    def delays() -> list[str]:
        return [record.getMessage().rsplit(" ", 2)[-2] for record in caplog.records]

    async def scenario() -> list[str]:
        async with Supervisor(RunSettings(options=make_options(), workers=1)):
            while len(caplog.records) < 5:
                await asyncio.sleep(0.01)
        return delays()

    assert run_event_loop(asyncio.wait_for(scenario(), 60)) == ["0.0", "0.1", "0.2", "0.4", "0.8"]
    assert caplog.records[0].getMessage() == (
        "a Lua worker ended before it started (exited with status 1); the next starts in 0.0 s"
    )
