"""The Lua monitor runtime, in stages imported one way only.

- :mod:`.runtime` — one sandboxed Lua 5.4 state per script (the only import of
  ``lupa``), stepped as a coroutine; ``prelude/*.lua`` is the trusted code every
  state starts with (CPU and time guard, modules, whitelist, driver).
- :mod:`.convert` — the one place where Lua values become Python values and back.
- :mod:`.jsoncodec` — the ``json`` module's semantics.
- :mod:`.registry` — everything a script can call that Python serves.
- :mod:`.result` and :mod:`.output` — what a script's end means; its lines and record.
- :mod:`.job` — what runs: a script, the run's settings, each script's limits.
- :mod:`.execute` — one script from its source to its outcome, in a worker or in-process.
- :mod:`.wire` — what crosses between the supervisor and a worker process.
- :mod:`.worker`, :mod:`.cacheserver`, :mod:`.supervisor` — worker processes, the run's
  cache, and the supervisor that starts, watches, replaces and feeds them.
- :mod:`.runner` — ``wsprobe run``: many scripts, their output and records.
"""
