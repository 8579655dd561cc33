"""The WebSocket client, in layers.

- :mod:`._websockets` — the only import of ``websockets``.
- :mod:`.core` — :class:`~.core.ClientCore`, RFC 6455 without I/O, and the boundary
  where ``websockets``' exceptions become wsprobe errors.
- :mod:`.sync` and :mod:`.asyncio` — the twin transports (a blocking socket; a bare
  asyncio Protocol) driving the core, each with the same functions and methods.
- :mod:`.addresses`, :mod:`.tls`, :mod:`.deadline` — what both transports share:
  where to connect, TLS contexts and certificate facts, the clock of a call.
- :mod:`._oserrors` — the transports' boundary where OS and TLS exceptions become
  :class:`~wsprobe.errors.ConnectError` or ``no response from web socket``.
- :mod:`.exchange` — how a ``send_recv`` conversation is judged and reported.
- :mod:`.server` — ``websockets``' server, for the local demo server and the tests.
"""
