"""The public result types: what :func:`wsprobe.probe` reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime

__all__ = ["Result", "Timings"]


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds spent in each phase of a call; ``tls`` is ``None`` for ``ws://``.

    ``reply`` runs from sending the message to the first data message; ``total``
    from the start of the call to the reply, so every phase is at most ``total``.
    Not counted: building the TLS context (before the clock starts) and the close
    after the reply (the server's time to answer our close is not the service's).
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
