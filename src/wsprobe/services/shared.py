"""What the scripts of one run share: the store, the cache and the HTTP client."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .cache import Cache, SharedCache
from .descriptors import Descriptors

if TYPE_CHECKING:
    from ..options import Options
    from .http import HttpClient
    from .store import Store

__all__ = ["RunServices"]


class RunServices:
    """The run's :class:`~.store.Store`, :class:`~.cache.Cache` and
    :class:`~.http.HttpClient`, each made on first use, and the
    :class:`~.descriptors.Descriptors` its scripts may open (a run that never calls
    ``http`` never imports aiohttp; one that never calls ``store`` opens no file).

    ``options`` are the run's call defaults (``timeout``, ``cafile``, ``insecure``);
    ``state_dir`` is where the store lives (default :func:`~.store.default_state_dir`).
    ``cache`` is the run's cache when it lives elsewhere (a worker's link to its
    supervisor's); by default a :class:`~.cache.Cache` of this process.
    Use from one event loop, and :meth:`close` when the run ends.
    """

    def __init__(
        self,
        options: Options,
        *,
        state_dir: Path | None = None,
        cache: SharedCache | None = None,
    ) -> None:
        self._options = options
        self._state_dir = state_dir
        self.cache: SharedCache = Cache() if cache is None else cache
        self.descriptors = Descriptors()
        self._store: Store | None = None
        self._http: HttpClient | None = None

    @property
    def store(self) -> Store:
        """The persistent store under the state directory."""
        if self._store is None:
            from .store import Store, default_state_dir

            self._store = Store(self._state_dir or default_state_dir())
        return self._store

    @property
    def http(self) -> HttpClient:
        """The HTTP client, with the run's defaults."""
        if self._http is None:
            from .http import HttpClient

            self._http = HttpClient(self._options)
        return self._http

    async def close(self) -> None:
        """Close the database and the HTTP connections, if they were opened."""
        if self._store is not None:
            await self._store.close()
        if self._http is not None:
            await self._http.close()
