"""What `wsprobe run` writes, written together: one flush for what is ready at once,
the two streams still in the order the lines were made."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

import pytest

from wsprobe.lua.output import Line, Output, OutputError, ScriptOutcome


def _output(out: TextIO, err: TextIO, *, json_output: bool) -> Output:
    return Output(["a.lua"], json_output=json_output, log_level="info", stdout=out, stderr=err)


@pytest.mark.parametrize("json_output", [True, False])
def test_both_streams_keep_their_order_when_they_go_to_one_place(
    tmp_path: Path, json_output: bool
) -> None:
    both = tmp_path / "both"
    with both.open("a") as out, both.open("a") as err:
        output = _output(out, err, json_output=json_output)
        for number in range(3):
            output.lines("a.lua", [Line("print", f"printed {number}", 0.0)])
            output.finished(ScriptOutcome("a.lua", ok=number != 1, result=number, error="bad"))
        output.flush()
    lines = both.read_text().splitlines()
    if json_output:
        assert [
            line if line.startswith("printed") else json.loads(line)["ok"] for line in lines
        ] == ["printed 0", True, "printed 1", False, "printed 2", True]
    else:
        assert lines == ["printed 0", "0", "printed 1", "a.lua: bad", "printed 2", "2"]


def test_a_stream_that_cannot_be_written_fails_at_the_flush(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w") as err, open("/dev/full", "w") as out:
        output = _output(out, err, json_output=True)
        output.finished(ScriptOutcome("a.lua", ok=True))
        with pytest.raises(OutputError) as raised:
            output.flush()
        # What stays buffered goes nowhere when the stream closes.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, out.fileno())
        os.close(null)
    assert str(raised.value) == "cannot write to standard output: no space left on device"
    assert raised.value.stream == 1
