"""What the blocking and asyncio transports share above the core: how a call is reported.

Both transports open a connection the same way (resolve, connect, TLS, upgrade)
and record the same :class:`Opening`; ``send_recv`` is then the same three steps
on either (send, receive the first data message, close), judged by :func:`reply_of`
and reported by :func:`result_of`, so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BinaryMessage, Error
from ..models import Result, Timings

if TYPE_CHECKING:
    import datetime

    from .core import ClientCore, Message

__all__ = ["Opening", "learning", "reply_of", "result_of"]


@dataclass(frozen=True, slots=True)
class Opening:
    """How a connection was opened: the peer, when the clock started (on
    :func:`time.perf_counter`), the phases' seconds, the certificate."""

    peer: str
    started: float
    dns: float
    connect: float
    tls: float | None
    upgrade: float
    cert_expires: datetime.datetime | None


def reply_of(message: Message) -> str:
    """The first data message as ``send_recv``'s reply: text, or the documented error."""
    kind, payload = message
    if kind == "binary" or not isinstance(payload, str):
        raise BinaryMessage
    return payload


@contextlib.contextmanager
def learning(opening: Opening, core: ClientCore) -> Iterator[None]:
    """Let an error after the upgrade carry what the call had learnt (``Error.facts``)."""
    try:
        yield
    except Error as exc:
        exc.facts.update(
            phase="reply", peer=opening.peer, status=core.status, subprotocol=core.subprotocol
        )
        raise


def result_of(
    url: str, opening: Opening, core: ClientCore, reply: str, reply_time: float, replied: float
) -> Result:
    """Assemble what :func:`wsprobe.probe` reports; ``replied`` is when the reply came."""
    return Result(
        reply=reply,
        url=url,
        peer=opening.peer,
        status=core.status or 101,
        subprotocol=core.subprotocol,
        timings=Timings(
            dns=opening.dns,
            connect=opening.connect,
            tls=opening.tls,
            upgrade=opening.upgrade,
            reply=reply_time,
            total=replied - opening.started,
        ),
        close_code=core.close_code,
        close_reason=core.close_reason,
        cert_expires=opening.cert_expires,
    )
