"""The compatibility corpus: the examples of Monsta's pages, run as scripts here.

Each file of tests/corpus/ ends with what it must print and its exit code (see its
README). The scripts reach the local servers through ``--env HTTP/HTTPS/WS``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import HttpServers, Run, Servers

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
_EXPECT = re.compile(r"--\[==\[ expect exit (\d+)\n(.*?)\]==\]\s*$", re.S)
_COPIES = re.compile(r"^-- corpus: copies (\d+)$", re.M)


def _cases() -> list[Path]:
    return sorted(CORPUS.glob("*.lua"))


def test_the_corpus_covers_every_page() -> None:
    pages = {path.name.split("-")[0] for path in _cases()}
    assert pages == {
        "cache", "globais", "http", "json", "log", "lua51", "script", "store", "string",
        "table", "time", "uuid", "ws",
    }  # fmt: skip


@pytest.mark.parametrize("path", _cases(), ids=lambda path: path.stem)
def test_corpus(
    path: Path,
    run: Run,
    servers: Servers,
    http_servers: HttpServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = path.read_text()
    found = _EXPECT.search(source)
    assert found is not None, f"{path.name} has no expected output"
    exit_code, expected = int(found.group(1)), found.group(2)
    monkeypatch.setenv("HTTP", http_servers.url)
    monkeypatch.setenv("HTTPS", http_servers.tls_url)
    monkeypatch.setenv("WS", servers.ws)
    copies = _COPIES.search(source)
    names = [path.name]
    if copies is not None:
        names = [f"{path.stem}-{n}.lua" for n in range(1, int(copies.group(1)) + 1)]
    scripts = []
    for name in names:
        shutil.copy(path, run.dir / name)
        scripts.append(str(run.dir / name))
    flags = ["--env", "HTTP", "--env", "HTTPS", "--env", "WS", "--state-dir", str(tmp_path)]
    code, out, err = run(*flags, *scripts)
    if len(names) == 1:
        assert (code, out) == (exit_code, expected), err
    else:
        lines = sorted(f"[{name}] {line}" for name in names for line in expected.splitlines())
        assert (code, sorted(out.splitlines())) == (exit_code, lines), err
