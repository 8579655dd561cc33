"""Put on ``PYTHONPATH`` by bench.py for `wsprobe run`: every process of the run
times its garbage collections (``gc.callbacks``) and keeps its longest pause, in
wall time and in the collecting thread's CPU time, in ``$WSPROBE_BENCH_GC_DIR/<pid>``
(rewritten only when either grows). On a loaded machine a pause's wall time also
holds the time the thread waited for a core; its CPU time is the collector's work."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

_folder = os.environ.get("WSPROBE_BENCH_GC_DIR")
# When the running collection began (wall, thread CPU), and the longest pauses so far.
_times = {"began": 0.0, "began_cpu": 0.0, "worst": 0.0, "worst_cpu": 0.0}


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _times["began"] = time.perf_counter()
        _times["began_cpu"] = time.thread_time()
        return
    pause = time.perf_counter() - _times["began"]
    cpu = time.thread_time() - _times["began_cpu"]
    if (pause > _times["worst"] or cpu > _times["worst_cpu"]) and _folder:
        _times["worst"] = max(pause, _times["worst"])
        _times["worst_cpu"] = max(cpu, _times["worst_cpu"])
        with open(os.path.join(_folder, str(os.getpid())), "w") as record:
            record.write(f"{_times['worst']} {_times['worst_cpu']} {info['generation']}\n")


if _folder:
    gc.callbacks.append(_timed)
