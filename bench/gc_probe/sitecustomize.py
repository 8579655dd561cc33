"""Put on ``PYTHONPATH`` by bench.py for `wsprobe run`: every process of the run
times its garbage collections (``gc.callbacks``) and keeps its longest pause in
``$WSPROBE_BENCH_GC_DIR/<pid>`` (rewritten only when the pause grows)."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

_folder = os.environ.get("WSPROBE_BENCH_GC_DIR")
# When the running collection began, and the longest pause so far.
_times = {"began": 0.0, "worst": 0.0}


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _times["began"] = time.perf_counter()
        return
    pause = time.perf_counter() - _times["began"]
    if pause > _times["worst"] and _folder:
        _times["worst"] = pause
        with open(os.path.join(_folder, str(os.getpid())), "w") as record:
            record.write(f"{pause} {info['generation']}\n")


if _folder:
    gc.callbacks.append(_timed)
