"""`make demo`: start `wsprobe serve --tls` locally, run the seed's examples, stop it.

The examples are the five of the `ws` module's page, pointed at 127.0.0.1:8765 (ws)
and localhost:8766 (wss, trusted through the throw-away CA the server writes).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from wsprobe.cli import main

HERE = Path(__file__).resolve().parent


def demo() -> int:
    with tempfile.TemporaryDirectory(prefix="wsprobe-demo-") as directory:
        server = subprocess.Popen(
            [sys.executable, "-m", "wsprobe", "serve", "--tls", "--tls-dir", directory],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            for _ in range(2):  # the ws:// line, then the wss:// line
                line = server.stdout.readline()
                if not line:
                    print("demo: the local server did not start", file=sys.stderr)
                    return 1
                print(line.rstrip(), flush=True)
            scripts = sorted(str(path) for path in HERE.glob("*.lua"))
            for script in scripts:
                print(f"\n== wsprobe run {Path(script).relative_to(HERE.parent)}", flush=True)
                code = main(["run", "--cafile", str(Path(directory) / "ca.pem"), script])
                if code != 0:
                    return code
            return 0
        finally:
            server.terminate()
            server.wait(timeout=10)
            assert server.stdout is not None
            server.stdout.close()


if __name__ == "__main__":
    sys.exit(demo())
