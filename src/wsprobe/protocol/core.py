"""RFC 6455 without I/O: :class:`ClientCore`, and the boundary of ``websockets``' errors.

:class:`ClientCore` turns bytes from the network into whole messages, a close, or a
wsprobe :class:`~wsprobe.errors.Error`, and tells which bytes to write back. It does
no I/O and keeps no clock, so the blocking transport (:mod:`.sync`) and the asyncio
transport (:mod:`.asyncio`) share every protocol decision. ``websockets``' exceptions
are translated here and nowhere else: none leaves this module.

Why the sans-I/O core and not ``websockets``' asyncio client: a whole one-shot
exchange costs about 55 µs of CPU in ``ClientProtocol``, while the asyncio client
adds proxy detection from the environment, tasks and an assembler to every call.
Measured side by side by ``make bench``: 703 µs per call for the asyncio client,
412 µs for ``send_recv`` on a blocking socket around the core, with the same
validated handshake, UTF-8 checks, masking and close handshake.
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import (
    ConnectError,
    Error,
    NoResponse,
    ProtocolViolation,
    ReplyTooLarge,
    SessionClosed,
    forget_tracebacks,
    one_line,
)
from ..url import redact
from ._websockets import (
    ClientPerMessageDeflateFactory,
    ClientProtocol,
    Frame,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    Opcode,
    PayloadTooBig,
    ProtocolError,
    Response,
    State,
    Subprotocol,
    WebSocketURI,
)

if TYPE_CHECKING:
    from ..options import Options
    from ..url import Target

__all__ = ["LOGGER", "USER_AGENT", "ClientCore", "Message"]

# websockets logs parser failures at ERROR; with no handler configured, logging's
# last resort would print them. A library does not print: route them to a logger
# the application may configure.
LOGGER = logging.getLogger("wsprobe.protocol")
LOGGER.addHandler(logging.NullHandler())

#: Sent with every upgrade request unless the caller gives a User-Agent header.
USER_AGENT = f"wsprobe/{__version__}"
_REPLACEABLE = ("host", "authorization", "user-agent")

Message = tuple[str, str | bytes]
"""A whole data message: ``("text", str)`` or ``("binary", bytes)``."""


#: Frames one data message may take beyond one per :data:`FRAME_BYTES` of its payload
#: and :data:`FRAME_RATE` a second since the last whole message, pings and pongs
#: included: a server sending 1-byte frames or pings costs the client a few
#: microseconds each, and must not make it spend a whole timeout parsing them; a
#: server pinging an idle session every few seconds for days is within the rate.
FRAME_ALLOWANCE = 1024
FRAME_BYTES = 16
FRAME_RATE = 100


class _ClientProtocol(ClientProtocol):
    """``ClientProtocol``, answering a close frame that interrupts a fragmented message,
    and failing a connection that floods it with small frames.

    websockets fails the connection (1002, "incomplete fragmented message") when a
    close frame arrives between the fragments of a message; RFC 6455 §5.4 allows
    control frames there, and Autobahn case 7.1.5 expects the close to be echoed
    with 1000. The incomplete message is dropped, as the closing handshake implies.

    Between two whole data messages, a server may send :data:`FRAME_ALLOWANCE` frames
    plus one per :data:`FRAME_BYTES` bytes of data and :data:`FRAME_RATE` a second;
    beyond, the connection fails (1002) with a protocol error. Autobahn's smallest
    fragments (64 bytes) stay far within it. The clock is read only past the first
    two terms, so a healthy message costs no clock read per frame.

    While ``backlogged`` (what was written waits unsent: a server that pings and never
    reads), a ping's pong is held instead of queued, only the latest one, as RFC 6455
    §5.5.3 allows: else each ping would add its pong to a write buffer without bound.
    """

    frames = 0
    data_bytes = 0
    #: When the count of frames started (the last whole message, or the upgrade).
    counting_since = 0.0
    backlogged = False
    held_pong: bytes | None = None

    def recv_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING and self.backlogged:
            self._count(frame)
            self.held_pong = bytes(frame.data)
            return
        if opcode is Opcode.CLOSE:
            self.current_size = None
        else:
            self._count(frame)
        super().recv_frame(frame)

    def _count(self, frame: Frame) -> None:
        opcode = frame.opcode
        self.frames += 1
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self.data_bytes += len(frame.data)
        allowed = FRAME_ALLOWANCE + self.data_bytes // FRAME_BYTES
        if self.frames > allowed:
            seconds = monotonic() - self.counting_since
            if self.frames > allowed + int(seconds * FRAME_RATE):
                raise ProtocolError(
                    f"too many small frames: {self.frames} frames for {self.data_bytes} "
                    f"bytes of data in {seconds:.1f} s"
                )
        if frame.fin and opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self.frames = self.data_bytes = 0
            self.counting_since = monotonic()

    def set_backlogged(self, backlogged: bool) -> None:
        """Hold pongs while ``backlogged``; when no longer, send the one held, if any."""
        self.backlogged = backlogged
        held = self.held_pong
        if not backlogged and held is not None:
            self.held_pong = None
            if self.state is State.OPEN:
                self.send_pong(held)


class ClientCore:
    """The client side of one WebSocket connection, without I/O.

    Feed it what the socket reads (:meth:`receive_data`, :meth:`receive_eof`) and
    write what :meth:`data_to_send` returns. Whole data messages arrive in
    :attr:`messages`; the first failure is in :attr:`error`.

    Thousands of connections may wait at once in one process: slots, a list for the
    messages (an empty deque is 760 bytes), and nothing of the handshake kept once
    the connection is upgraded (see :meth:`_forget_handshake`).
    """

    __slots__ = (
        "_fragment_kind",
        "_fragments",
        "_head",
        "_max_size",
        "_protocol",
        "display",
        "error",
        "messages",
        "pongs",
        "queued",
        "status",
        "upgraded",
    )

    def __init__(self, target: Target, options: Options) -> None:
        self.display = target.display
        self._max_size = options.max_size
        uri = WebSocketURI(
            secure=target.secure,
            host=target.host,
            port=target.port,
            path=target.path or "/",
            query=target.query,
            username=target.username,
            password=target.password,
        )
        self._protocol = _ClientProtocol(
            uri,
            origin=options.origin,  # type: ignore[arg-type]
            extensions=[ClientPerMessageDeflateFactory()] if options.compression else None,
            subprotocols=[Subprotocol(name) for name in options.subprotocols]
            if options.subprotocols
            else None,
            max_size=options.max_size,
            logger=LOGGER,
        )
        self._protocol.counting_since = monotonic()
        request = self._protocol.connect()
        request.headers["User-Agent"] = USER_AGENT
        for name, value in options.headers:
            # The caller's Host, Authorization or User-Agent replaces ours.
            if name in request.headers and name.lower() in _REPLACEABLE:
                del request.headers[name]
            request.headers[name] = value
        self._protocol.send_request(request)
        self.status: int | None = None
        self.upgraded = False
        self.messages: list[Message] = []
        # The size of the whole messages kept unread (text in characters).
        self.queued = 0
        self.pongs: set[bytes] = set()
        self.error: Error | None = None
        # One buffer, not a list of fragments: a message in a million 1-byte frames
        # costs a megabyte, not a million objects.
        self._fragments = bytearray()
        self._fragment_kind = ""
        # Kept only until the upgrade: an HTTP/1.0 refusal is reported by websockets
        # without its status, which we read back from the status line.
        self._head = b""

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self._protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame, once one was received."""
        close = self._protocol.close_rcvd
        return None if close is None else int(close.code)

    @property
    def close_reason(self) -> str:
        """The reason of the server's close frame, or ``""``."""
        close = self._protocol.close_rcvd
        return "" if close is None else close.reason

    @property
    def closed(self) -> bool:
        """True once the connection is over: nothing more will be read."""
        return self._protocol.state is State.CLOSED or self.error is not None

    @property
    def open(self) -> bool:
        """True while messages may be sent: upgraded, and no close sent or received."""
        return self._protocol.state is State.OPEN

    @property
    def close_received(self) -> bool:
        """True once the server sent its close frame."""
        return self._protocol.close_rcvd is not None

    def data_to_send(self) -> list[bytes]:
        """The bytes to write now, in order; an empty chunk means half-close."""
        return self._protocol.data_to_send()

    @property
    def unread(self) -> int:
        """About how many bytes of received data wait to be read: whole messages,
        a message's fragments, and bytes not yet parsed into frames."""
        return self.queued + len(self._fragments) + len(self._protocol.reader.buffer)

    def drop_unread(self) -> None:
        """Forget what was received and not read: the connection failed."""
        self.messages.clear()
        self._fragments = bytearray()
        self.queued = 0
        self._protocol.reader.buffer.clear()

    def take_message(self) -> Message:
        """Remove and return the oldest received data message (there must be one)."""
        message = self.messages.pop(0)
        self.queued -= len(message[1])
        return message

    def send_text(self, text: str) -> None:
        """Queue one text message; raise :class:`SessionClosed` once closing."""
        self._check_open()
        self._protocol.send_text(text.encode())

    def send_binary(self, data: bytes) -> None:
        """Queue one binary message; raise :class:`SessionClosed` once closing."""
        self._check_open()
        self._protocol.send_binary(data)

    def set_backlogged(self, backlogged: bool) -> None:
        """Say whether what was written waits unsent (the transport's write buffer is
        over its high-water mark): meanwhile pongs are held, only the latest one."""
        self._protocol.set_backlogged(backlogged)

    def send_ping(self, payload: bytes) -> None:
        """Queue a ping; its pong's payload will appear in :attr:`pongs`."""
        self._check_open()
        self._protocol.send_ping(payload)

    def _check_open(self) -> None:
        if self._protocol.state is not State.OPEN:
            raise SessionClosed(self.display, self.close_code, self.close_reason)

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake, unless it has started already."""
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(code, reason)

    def receive_data(self, data: bytes) -> None:
        """Process bytes read from the network."""
        if not self.upgraded and self.status is None:
            self._head += data[: max(0, 200 - len(self._head))]
        self._protocol.receive_data(data)
        self._process()

    def receive_eof(self) -> None:
        """Process the end of the stream."""
        self._protocol.receive_eof()
        self._process()
        if self.error is None and not self.upgraded:
            self.error = ConnectError(
                self.display, "network", "connection closed by the server during the upgrade"
            )

    def raise_if_ended(self) -> None:
        """Raise what ended the connection: its error, or ``no response`` once closed."""
        if self.error is not None:
            raise self.error
        if self.closed or self.close_received:
            raise self.no_response()

    def no_response(self) -> NoResponse:
        """The documented error for a connection that ended before any data message."""
        return NoResponse(close_code=self.close_code, close_reason=self.close_reason)

    def _process(self) -> None:
        protocol = self._protocol
        for event in protocol.events_received():
            if isinstance(event, Response):
                self.status = event.status_code
                self.upgraded = protocol.handshake_exc is None
                self._head = b""
                if self.upgraded:
                    _forget_handshake(protocol, event)
            elif isinstance(event, Frame):
                self._frame(event)
        if self.error is not None:
            return
        if protocol.handshake_exc is not None:
            self.error = self._handshake_error(protocol.handshake_exc)
            forget_tracebacks(protocol.handshake_exc)
        elif protocol.parser_exc is not None:
            self.error = self._parser_error(protocol.parser_exc)
            # The protocol keeps its parser's error, whose frames hold the protocol.
            forget_tracebacks(protocol.parser_exc)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._fragment_kind = "text" if opcode is Opcode.TEXT else "binary"
            if frame.fin:  # the common case: one frame, no copy
                self._message(bytes(frame.data))
                return
            self._fragments = bytearray(frame.data)
        elif opcode is Opcode.CONT:
            self._fragments += frame.data
        else:
            if opcode is Opcode.PONG:
                self.pongs.add(bytes(frame.data))
            return
        if frame.fin:
            payload = bytes(self._fragments)
            self._fragments = bytearray()
            self._message(payload)

    def _message(self, payload: bytes) -> None:
        if self._fragment_kind == "binary":
            self.messages.append(("binary", payload))
            self.queued += len(payload)
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self._protocol.fail(1007, "invalid UTF-8")
            self.error = ProtocolViolation(self.display, "invalid UTF-8 in text message")
            return
        self.messages.append(("text", text))
        self.queued += len(text)

    def _handshake_error(self, exc: Exception) -> Error:
        if isinstance(exc, InvalidStatus):
            response = exc.response
            location = response.headers.get("Location")
            # websockets' refusal and its response refer to each other: a cycle, which
            # keeps what it holds until a full collection (the body: up to 1 MiB).
            response.body = b""
            return self._rejected(response.status_code, response.reason_phrase, location)
        if isinstance(exc, InvalidMessage):
            status_line = self._head.split(b"\r\n", 1)[0].decode("latin-1")
            version, _, rest = status_line.partition(" ")
            code, _, phrase = rest.partition(" ")
            # A 101 cut short is an upgrade that broke, not a refusal.
            # Three digits, as RFC 9110 has it: "99999999999999999999" is no status.
            status = code.isascii() and code.isdigit() and len(code) == 3
            if version.startswith("HTTP/") and status and code != "101":
                return self._rejected(int(code), phrase)
            if isinstance(exc.__cause__, EOFError):
                return ConnectError(
                    self.display,
                    "network",
                    "connection closed by the server during the upgrade",
                )
            return ConnectError(self.display, "protocol", "the server's reply is not HTTP")
        assert isinstance(exc, InvalidHandshake)
        return ConnectError(self.display, "protocol", f"invalid upgrade response: {exc}")

    def _rejected(self, status: int, phrase: str, location: str | None = None) -> ConnectError:
        text = one_line(f"HTTP {status} {phrase}".rstrip())
        if location is not None and 300 <= status < 400:
            # Where a redirect points is what the operator needs next (no credentials).
            text += f" (Location: {redact(location)})"
        error = ConnectError(
            self.display, "http", f"server rejected WebSocket upgrade: {text}", status=status
        )
        error.facts["status"] = status
        if location is not None:
            error.facts["location"] = redact(location)
        return error

    def _parser_error(self, exc: Exception) -> Error:
        if isinstance(exc, PayloadTooBig):
            return ReplyTooLarge(self.display, self._max_size)
        if isinstance(exc, ProtocolError):
            return ProtocolViolation(self.display, str(exc))
        if isinstance(exc, UnicodeDecodeError):
            return ProtocolViolation(self.display, "invalid UTF-8 in close reason")
        if isinstance(exc, EOFError):
            # The TCP connection ended without a close frame.
            return self.no_response()
        # permessage-deflate reports corrupt data with zlib's own error.
        return ProtocolViolation(self.display, str(exc))


# What ClientProtocol keeps of the handshake and never reads once it is over.
_HANDSHAKE_ONLY = ("id", "uri", "key", "origin", "available_extensions", "available_subprotocols")


def _forget_handshake(protocol: ClientProtocol, response: Response) -> None:
    """Release what a connection holds only because of its handshake.

    The client parser's generator frame keeps the handshake response (headers and
    all) alive as a local for as long as the connection lives, and the protocol
    keeps the URI, the key, the offers and a per-connection UUID it only logs:
    about 1.5 KB of every waiting connection, read by nobody after the upgrade
    (the extensions and subprotocol agreed on are kept apart from these).
    """
    response.headers.clear()
    response.body = b""
    for name in _HANDSHAKE_ONLY:
        setattr(protocol, name, None)
