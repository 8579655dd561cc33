"""The soak's hostile servers (tests/support/hostile.py's behaviours), in a process of
their own: their flooding threads must not share the interpreter that times `/metrics`.

Run with the project's root on PYTHONPATH: ``hostile_servers.py SLOW_SECONDS``. It prints
one JSON line, the port of each behaviour, and serves until its standard input closes.
"""

from __future__ import annotations

import json
import socket
import sys

from tests.support.hostile import continuation_flood, ping_flood, replies
from tests.support.wire import RawHandler, RawServer

#: Bytes of a huge reply: twice a declarative check's default max_size.
HUGE = 2 * 1024 * 1024
#: A reply that makes a backtracking pattern explode: `(a*)*b` and Lua's `a*a*…b`.
BACKTRACKING = b"a" * 64


def closing(handler: RawHandler) -> RawHandler:
    """``handler``, then the connection closed: a soak makes thousands of them."""

    def serve(conn: socket.socket) -> None:
        try:
            handler(conn)
        finally:
            conn.close()

    return serve


def main() -> None:
    slow = float(sys.argv[1])
    behaviours = {
        "continuation": continuation_flood,
        "pings": ping_flood,
        "huge": replies(b"x" * HUGE),
        "backtracking": replies(BACKTRACKING),
        "slow": replies(b"late", after=slow),
    }
    servers = {name: RawServer(closing(handler)) for name, handler in behaviours.items()}
    print(json.dumps({name: server.port for name, server in servers.items()}), flush=True)
    sys.stdin.read()
    for server in servers.values():
        server.close()


if __name__ == "__main__":
    main()
