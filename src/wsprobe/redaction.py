"""What a message may show of a text a caller gave: one line, and no credentials.

Below :mod:`.errors` (whose messages are made safe here) and :mod:`.url` (which shows
URLs through :func:`redact`), so neither needs the other for it.
"""

from __future__ import annotations

import re

__all__ = ["one_line", "redact"]

# A scheme followed by at least one slash: what precedes an authority.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/+|/+")


def one_line(text: str) -> str:
    """``text`` as a one-line message may show it: what is not printable (line breaks,
    control characters) escaped as in a Python string literal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def redact(url: str) -> str:
    """``url`` as a message may show it: one line, and no credentials.

    The one place where URLs are made safe to show. Everything up to the last ``@``
    after the scheme may be a ``user:password`` (a password holding ``/``, ``?``,
    ``#`` or ``@`` ends the authority early, and a URL that fails to parse may have
    any shape: ``ws:/user:pw@host``, ``//user:pw@host``), so it is dropped: a clean
    ``user:password@host`` part leaves ``ws://host/``; when the ``@`` lies past the
    authority, what is dropped is marked ``…@``. Characters that are not printable
    (line breaks, controls) are shown escaped, so a message stays one line.
    """
    prefix = _SCHEME.match(url)
    start = prefix.end() if prefix else 0
    at = url.rfind("@", start)
    if at >= 0:
        rest = url[start:]
        authority_end = min(
            (i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest)
        )
        clean = start + authority_end > at
        url = url[:start] + ("" if clean else "…@") + url[at + 1 :]
    return one_line(url)
