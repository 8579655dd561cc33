"""Stand-in modules lent to a module while it loads: what it imports, and a short process
never uses or needs only one function of.

``wsprobe check`` is a process a scheduler starts once per check; the modules that
``websockets`` (and ``dataclasses``) import at the top cost it more CPU than the call.
A :class:`StandIn` is put in ``sys.modules`` under the real module's name only while
the borrower is imported (:func:`lent`), then taken back: the borrower's global refers
to the stand-in, nothing else does, and a later ``import`` of that name loads the real
module. A stand-in offers the functions the borrower calls, each giving what the real
module's would; any other attribute comes from the real module, imported on first use,
so the borrower behaves as it would with the real one.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["StandIn", "lent"]


class StandIn(types.ModuleType):
    """A module named ``name`` offering ``offered``; the real module for the rest."""

    def __init__(self, name: str, **offered: object) -> None:
        super().__init__(name)
        self.__dict__.update(offered)

    def __getattr__(self, attribute: str) -> Any:
        # Only attributes not offered get here. The import system asks a module for
        # ``__path__`` on every ``from module import name``: a stand-in has none of
        # the module's own dunders, as it is not the module's file.
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        # The real module takes its name back.
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


@contextlib.contextmanager
def lent(*stand_ins: StandIn) -> Iterator[None]:
    """Lend the stand-ins of modules not imported yet while the body imports."""
    lending = [stand_in for stand_in in stand_ins if stand_in.__name__ not in sys.modules]
    for stand_in in lending:
        sys.modules[stand_in.__name__] = stand_in
    try:
        yield
    finally:
        for stand_in in lending:
            if sys.modules.get(stand_in.__name__) is stand_in:
                del sys.modules[stand_in.__name__]
