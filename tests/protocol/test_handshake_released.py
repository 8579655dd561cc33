"""Once upgraded, a connection keeps what it agreed on and nothing else of its handshake."""

from __future__ import annotations

import base64
import gc
import hashlib
import zlib

from tests.support.wire import GUID, frame
from wsprobe.options import make_options
from wsprobe.protocol._websockets import Response
from wsprobe.protocol.core import ClientCore
from wsprobe.url import parse_url


def test_the_handshake_is_released_and_what_was_agreed_still_works() -> None:
    core = ClientCore(
        parse_url("ws://example.test/"), make_options(timeout=5, subprotocols=["chat"])
    )
    request = b"".join(core.data_to_send())
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
    core.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: chat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\nX-Padding: " + b"x" * 500 + b"\r\n\r\n"
    )
    assert core.upgraded
    assert core.error is None
    gc.collect()
    # websockets' parser keeps the response alive; its headers are gone.
    responses = [found for found in gc.get_objects() if isinstance(found, Response)]
    assert responses
    assert all(len(response.headers) == 0 for response in responses)
    # What was agreed on stays: the subprotocol, and permessage-deflate both ways.
    assert core.subprotocol == "chat"
    deflate = zlib.compressobj(wbits=-15)
    payload = deflate.compress("olá".encode()) + deflate.flush(zlib.Z_SYNC_FLUSH)
    core.receive_data(frame(0x1, payload[:-4], rsv=0x40))
    assert core.take_message() == ("text", "olá")
    core.send_text("hi")
    sent = b"".join(core.data_to_send())
    assert sent[0] == 0xC1  # FIN, RSV1 (compressed), text
