"""What Lua scripts reach beyond ``ws``, on the Python side: Monsta's modules.

Each module is plain Python with an async API where it waits, knows nothing of Lua,
and raises only :class:`wsprobe.Error` subclasses whose text a script gets as its
error value:

- :mod:`.store` — ``store``: values that survive runs, in SQLite under the state dir;
- :mod:`.cache` — ``cache``: values with a time to live, shared by a run's scripts;
- :mod:`.http` — ``http``: HTTP requests under the deadline and TLS rules of ``ws``;
- :mod:`.dates` — ``time.parse``: RFC 3339 dates;
- :mod:`.ids` — ``uuid.uuid4``;
- :mod:`.jsontext` — the compact JSON text of values (``json.encode``, store, cache);
- :mod:`.shared` — :class:`~.shared.RunServices`, what the scripts of a run share.

Nothing is imported here: each is loaded by the operation that needs it.
"""
