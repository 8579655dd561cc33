"""``argparse``, speaking English as the rest of the command line does.

argparse translates its words through ``gettext``: every parser built looks for a
message catalogue of the default domain (a dozen stat() calls for files that are
not there) and the first look-up imports ``locale``, ~2 ms of a `wsprobe check`
process that a scheduler starts once per check. wsprobe's own messages are English
and a monitoring plugin's output is read by programs as much as by people, so
argparse's words stay English too: it is loaded with a ``gettext`` that returns the
message, which is what it returns when no catalogue is installed.
"""

from __future__ import annotations

from ..protocol._standins import StandIn, lent

__all__ = ["argparse"]


def _english(message: str) -> str:
    return message


def _english_plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


with lent(StandIn("gettext", gettext=_english, ngettext=_english_plural)):
    import argparse
