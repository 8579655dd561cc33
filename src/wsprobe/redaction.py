"""What a message may show of a text a caller gave: one line, and no credentials.

Below :mod:`.errors` (whose messages are made safe here) and :mod:`.url` (which shows
URLs through :func:`redact`), so neither needs the other for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

__all__ = [
    "SECRET_WORDS",
    "TOKEN",
    "cut",
    "one_line",
    "redact",
    "redact_header",
    "redact_query",
]

#: An HTTP token (RFC 9110): what a header name or a subprotocol name is made of.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A query parameter whose name holds one of these words (in any case) has its value
#: hidden wherever a URL is shown: ``?access_token=…``, ``?api_key=…``.
SECRET_WORDS = ("token", "access_token", "key", "password", "secret", "auth")
#: What a hidden value is shown as.
HIDDEN = "…"

# A header's name before the space that replaced its colon.
_NAME = re.compile(rf"({TOKEN.pattern})\s")
# A scheme followed by at least one slash: what precedes an authority.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/+|/+")
# One parameter: what follows ?, &, ; or # up to the next of them (or a space). After a
# #, a fragment's parameters: OAuth's implicit flow sends an access_token there.
_PARAMETER = re.compile(r"(?<=[?&;#])([^=&;#\s]*)=([^&;#\s]*)")
# A host with an optional port: an authority that holds no user:password.
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^:@\[\]]+)(?::[0-9]*)?")


def cut(text: str, limit: int) -> str:
    """``text`` as shown where at most ``limit`` characters fit: what is cut is said,
    ``… (N more characters)``."""
    if len(text) <= limit:
        return text
    kept = limit - 32
    return f"{text[:kept]}… ({len(text) - kept} more characters)"


def one_line(text: str) -> str:
    """``text`` as a one-line message may show it: what is not printable (line breaks,
    control characters) escaped as in a Python string literal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def redact(url: str, words: Iterable[str] = ()) -> str:
    """``url`` as a message may show it: one line, no credentials, no secret parameters.

    The one place where URLs are made safe to show. A ``user:password@`` is dropped:
    a clean one leaves ``ws://host/``. A password holding ``/``, ``?``, ``#`` or ``@``
    ends the authority early, and a URL that fails to parse may have any shape
    (``ws:/user:pw@host``, ``//user:pw@host``), so an ``@`` past the authority is
    taken for the end of a password too, and what precedes it dropped (marked
    ``…@``) — unless it stands in a ``name=value`` parameter of the query of a plain
    ``host:port`` (``ws://host/?mail=a@b``; a raw password of digits followed by ``?``
    would look the same, and is shown). Every parameter whose name holds one of
    :data:`SECRET_WORDS` or ``words`` has its value shown as ``…``. Characters that
    are not printable (line breaks, controls) are shown escaped, so a message stays
    one line.
    """
    prefix = _SCHEME.match(url)
    start = prefix.end() if prefix else 0
    at = url.rfind("@", start)
    if at >= 0 and not _in_parameter(url, start, at):
        clean = _authority_end(url, start) > at
        url = url[:start] + ("" if clean else "…@") + url[at + 1 :]
    return one_line(redact_query(url, words))


def _in_parameter(url: str, start: int, at: int) -> bool:
    # An @ after the '=' of a query parameter, behind an authority that is a plain
    # host:port, is that parameter's value (an e-mail address), not a password's end.
    query = url.find("?", start)
    if query < 0 or query > at or not _HOST_PORT.fullmatch(url, start, _authority_end(url, start)):
        return False
    if "#" in url[start:at]:
        return False
    name, equals, _ = re.split(r"[&;]", url[query + 1 : at])[-1].partition("=")
    return bool(name) and bool(equals)


def _authority_end(url: str, start: int) -> int:
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return min(ends, default=len(url))


def redact_query(text: str, words: Iterable[str] = ()) -> str:
    """``text`` with the value of every query (or fragment) parameter whose name holds
    a secret word (:data:`SECRET_WORDS`, and ``words``; any case, also percent-encoded)
    shown as ``…``. Works on a URL, or on any text quoting URLs (an error message, a
    log line)."""
    secret = tuple(word.lower() for word in (*SECRET_WORDS, *words) if word)

    def hide(match: re.Match[str]) -> str:
        name = match.group(1)
        plain = unquote_plus(name).lower()
        if any(word in plain for word in secret) and match.group(2):
            return f"{name}={HIDDEN}"
        return match.group()

    return _PARAMETER.sub(hide, text) if "=" in text else text


def redact_header(text: str) -> str:
    """What a message may show of a header a caller got wrong: its name, never a value.

    ``Authorization Bearer TOKEN`` (a forgotten colon) shows as ``Authorization…``:
    a leading token followed by a space is the name, then an ellipsis for whatever
    follows. Anything else (``-H TOKEN``, ``-H TOKEN;x``) may be the value itself:
    it shows as ``…``.
    """
    if not text:
        return ""
    name = _NAME.match(text)
    return f"{name.group(1)}…" if name else "…"
