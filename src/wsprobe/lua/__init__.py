"""The Lua monitor runtime, in layers.

- :mod:`.runtime` — one sandboxed Lua 5.4 state per script (the only import of
  ``lupa``), stepped as a coroutine; :mod:`prelude.lua <.runtime>` is the trusted
  code every state starts with (whitelist, modules, CPU and time guard).
- :mod:`.convert` — the one place where Lua values become Python values and back.
- :mod:`.jsoncodec` — the ``json`` module's semantics.
- :mod:`.registry` — everything a script can call that Python serves.
- :mod:`.runner` and :mod:`.output` — ``wsprobe run``: many scripts on one event
  loop, their output and records.
"""
