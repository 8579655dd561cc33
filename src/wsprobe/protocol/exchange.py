"""What the blocking and asyncio transports share above the core: how a call is reported.

Both transports open a connection the same way (resolve, connect, TLS, upgrade)
and record the same :class:`Opening`; ``send_recv`` is then the same three steps
on either (send, receive the first data message, close), judged by :func:`reply_of`
and reported by :func:`result_of`, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..errors import BinaryMessage, Error
from ..models import Result, Timings

if TYPE_CHECKING:
    import datetime

    from .core import ClientCore, Message

__all__ = ["Learning", "Opening", "reply_of", "result_of"]


class Opening(NamedTuple):
    """How a connection was opened: the peer, when the clock started (on
    :func:`time.perf_counter`), the phases' seconds, the certificate.

    A named tuple: a frozen dataclass with slots costs a `wsprobe check` process
    several times more to define, for the same immutable record.
    """

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


class Learning:
    """Let an error after the upgrade carry what the call had learnt (``Error.facts``).

    A class with slots rather than a generator: it lives as long as its call waits,
    and a generator-based context manager costs ~350 bytes a waiting call.
    """

    __slots__ = ("core", "opening")

    def __init__(self, opening: Opening, core: ClientCore) -> None:
        self.opening = opening
        self.core = core

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if isinstance(exc, Error):
            exc.facts.update(
                phase="reply",
                peer=self.opening.peer,
                status=self.core.status,
                subprotocol=self.core.subprotocol,
            )


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
