"""`make demo`: start `wsprobe serve --tls` locally, run the seed's examples, stop it.

The examples are the five of the `ws` module's page, pointed at 127.0.0.1:8765 (ws)
and localhost:8766 (wss, trusted through the throw-away CA the server writes). Then
`wsprobe agent examples/agent.yaml` runs for a few seconds: a `/metrics` excerpt and
the status page's URL are printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
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
            return agent(Path(directory) / "state")
        finally:
            server.terminate()
            server.wait(timeout=10)
            assert server.stdout is not None
            server.stdout.close()


# The families worth a first look; the rest is in the full /metrics.
EXCERPT = re.compile(r"^(probe_success|probe_duration_seconds|wsprobe_monitor_(status|value))\{")


def agent(state_dir: Path, seconds: float = 4.0) -> int:
    """Run the agent on examples/agent.yaml for a few seconds; print what it serves."""
    config = HERE / "agent.yaml"
    print(f"\n== wsprobe agent {config.relative_to(HERE.parent)} --listen 127.0.0.1:0", flush=True)
    argv = [sys.executable, "-m", "wsprobe", "agent", str(config), "--listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [*argv, "--state-dir", str(state_dir)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LATENCY_WARN_MS": "250"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://\S+/)", line)
        if match is None:
            print(f"demo: the agent did not start: {line.strip()}", file=sys.stderr)
            return 1
        base = match.group(1)
        time.sleep(seconds)
        with urllib.request.urlopen(base + "metrics", timeout=10) as response:
            metrics = response.read().decode()
        print(f"GET {base}metrics (excerpt):")
        for sample in metrics.splitlines():
            if EXCERPT.match(sample):
                print(f"  {sample}")
        print(f"status page: {base} (the agent stops now; run it yourself to keep it)")
    finally:
        process.terminate()
        code = process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
    print(f"agent stopped with exit status {code}")
    return code


if __name__ == "__main__":
    sys.exit(demo())
