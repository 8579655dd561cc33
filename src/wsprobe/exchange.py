"""The one-shot conversation of ``send_recv``, as a state machine both transports drive.

Upgrade, send one text message, take the first data message, start the close.
The transports only move bytes, keep the clock and enforce the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import BinaryMessage, Error
from .options import Options
from .protocol import ClientCore
from .url import Target

if TYPE_CHECKING:
    import datetime

__all__ = ["OneShot", "Result", "Timings"]


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


class OneShot:
    """Drive a :class:`ClientCore` through one request and its first reply.

    After each :meth:`feed`, write :meth:`data_to_send`; once :attr:`outcome` is set
    (the reply, or an :class:`Error`) keep reading only while :attr:`lingering`.
    """

    def __init__(
        self,
        target: Target,
        options: Options,
        text: str,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.core = ClientCore(target, options)
        self._text = text
        self._clock = clock
        self.outcome: str | Error | None = None
        self.upgraded_at = 0.0
        self.replied_at = 0.0

    @property
    def lingering(self) -> bool:
        """True while the close handshake is worth waiting for."""
        return not self.core.closed

    def data_to_send(self) -> list[bytes]:
        """Bytes to write now; empty chunks (half-close) are dropped."""
        return [chunk for chunk in self.core.data_to_send() if chunk]

    def feed(self, data: bytes) -> None:
        """Process bytes read from the socket."""
        self.core.receive_data(data)
        self._advance()

    def feed_eof(self) -> None:
        """Process the end of the stream."""
        self.core.receive_eof()
        self._advance()

    def _advance(self) -> None:
        core = self.core
        if core.upgraded and not self.upgraded_at:
            self.upgraded_at = self._clock()
            # The server may have closed in the same read as its 101: then there
            # is nobody to send to, and the close below decides the outcome.
            if core.open:
                core.send_text(self._text)
        if self.outcome is not None:
            return
        if core.messages:
            self.replied_at = self._clock()
            _, payload = core.messages.popleft()
            self.outcome = payload if isinstance(payload, str) else BinaryMessage()
            core.send_close(1000)
        elif core.error is not None:
            self.outcome = core.error
        elif core.close_received:
            self.outcome = core.no_response()
