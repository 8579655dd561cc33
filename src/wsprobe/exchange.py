"""What the blocking and asyncio connections share above the protocol: facts and results.

Both transports open a connection the same way (resolve, connect, TLS, upgrade)
and record the same :class:`Opening`; ``send_recv`` is then the same three steps
on either (send, receive the first data message, close), judged by :func:`reply_of`
and reported by :func:`result_of`, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import BinaryMessage

if TYPE_CHECKING:
    import datetime

    from .protocol import ClientCore, Message

__all__ = ["Opening", "Result", "Timings", "reply_of", "result_of"]


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds spent in each phase of a call; ``tls`` is ``None`` for ``ws://``.

    ``reply`` runs from sending the message to the first data message; ``total``
    covers the whole call, closing included, so every phase is at most ``total``.
    """

    dns: float
    connect: float
    tls: float | None
    upgrade: float
    reply: float
    total: float


@dataclass(frozen=True, slots=True)
class Result:
    """What :func:`wsprobe.probe` learnt: the reply and the facts of the connection."""

    reply: str
    url: str
    peer: str
    status: int
    subprotocol: str | None
    timings: Timings
    close_code: int | None = None
    close_reason: str = ""
    cert_expires: datetime.datetime | None = field(default=None)

    def facts(self) -> dict[str, Any]:
        """Everything as a plain dict (``timings`` nested), for JSON and for Lua."""
        timings = self.timings
        return {
            "url": self.url,
            "reply": self.reply,
            "peer": self.peer,
            "status": self.status,
            "subprotocol": self.subprotocol,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "cert_expires": self.cert_expires,
            "timings": {
                "dns": timings.dns,
                "connect": timings.connect,
                "tls": timings.tls,
                "upgrade": timings.upgrade,
                "reply": timings.reply,
                "total": timings.total,
            },
        }


@dataclass(frozen=True, slots=True)
class Opening:
    """How a connection was opened: the peer, the phases' seconds, the certificate."""

    peer: str
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


def result_of(
    url: str, opening: Opening, core: ClientCore, reply: str, reply_time: float, total: float
) -> Result:
    """Assemble what :func:`wsprobe.probe` reports."""
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
            total=total,
        ),
        close_code=core.close_code,
        close_reason=core.close_reason,
        cert_expires=opening.cert_expires,
    )
