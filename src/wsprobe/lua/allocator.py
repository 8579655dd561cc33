"""The C allocator of the worker processes: jemalloc when it is installed.

A worker holds thousands of Lua states, and Lua allocates every string, table and
closure of each with ``realloc``. glibc's allocator keeps more resident memory for
them than jemalloc does and takes longer (docs/performance.md), so a worker starts
with jemalloc preloaded when the library is found. ``WSPROBE_JEMALLOC=0`` turns it
off (the system's allocator then), and a ``LD_PRELOAD`` or ``MALLOC_CONF`` of the
operator's is kept: the library is added after their preloads, and their
``MALLOC_CONF`` replaces the tuning below.
"""

from __future__ import annotations

import ctypes.util
import functools
import logging
import re
import sysconfig
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SWITCH", "TUNING", "jemalloc", "worker_environment"]

_log = logging.getLogger(__name__)

#: The environment variable that turns jemalloc off when it is ``0``.
SWITCH = "WSPROBE_JEMALLOC"
#: jemalloc's settings for a worker: two arenas for all its threads (the event
#: loop's and the step threads', which take turns on the GIL anyway) rather than
#: four per core, so that states made on one thread and freed on another mostly
#: share their pages. Other settings measured no better (docs/performance.md).
TUNING = "narenas:2"

_SONAME = "libjemalloc.so.2"


@functools.cache
def jemalloc() -> str | None:
    """The path (or name) of jemalloc's shared library, or ``None`` when it is not
    installed: Debian's and Ubuntu's place first, then the linker's cache."""
    multiarch = sysconfig.get_config_var("MULTIARCH")
    for directory in ([f"/usr/lib/{multiarch}"] if multiarch else []) + ["/usr/lib", "/usr/lib64"]:
        candidate = Path(directory) / _SONAME
        if candidate.is_file():
            return str(candidate)
    found = ctypes.util.find_library("jemalloc")
    if found is None:
        _log.debug("jemalloc not found: workers use the system's allocator")
    return found


def worker_environment(environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment a worker starts with, given the supervisor's and jemalloc's
    library (:func:`jemalloc`): ``None`` (the same) when jemalloc is off or missing."""
    if library is None or environ.get(SWITCH, "").strip() == "0":
        return None
    preloads = environ.get("LD_PRELOAD", "")
    # The dynamic linker takes spaces and colons between preloads.
    if library in re.split(r"[\s:]+", preloads):
        return None
    return {
        **environ,
        "LD_PRELOAD": f"{preloads} {library}" if preloads.strip() else library,
        "MALLOC_CONF": environ.get("MALLOC_CONF", TUNING),
    }
