"""The transports' error boundary: OS, socket and TLS exceptions in words.

Both transports meet the same foreign exceptions (``OSError`` and its kin:
``socket.gaierror``, ``ssl.SSLError``, ``TimeoutError``) and translate them here,
each in one place: :func:`map_connect_errors` around opening a connection, and
:func:`map_receive_errors` around reading from an open one.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ConnectError, Error, NoResponse

if TYPE_CHECKING:
    import ssl

    from ..url import Target
    from .core import ClientCore

__all__ = ["connect_error", "map_connect_errors", "map_receive_errors"]


@contextlib.contextmanager
def map_connect_errors(target: Target, timeout: float, facts: dict[str, Any]) -> Iterator[None]:
    """Raise what went wrong while opening a connection as a :class:`ConnectError`.

    A deadline that passed becomes ``timed out after Ns``; wsprobe's own errors
    (an HTTP refusal read by the core, say) pass through. Either way the error
    carries ``facts``, what the opener had learnt by then (its phase, the peer).
    """
    try:
        yield
    except Error as exc:
        exc.facts = {**facts, **exc.facts}
        raise
    except TimeoutError:
        message = f"timed out after {timeout:g}s"
        raise _with_facts(ConnectError(target.display, "timeout", message), facts) from None
    except OSError as exc:
        raise _with_facts(connect_error(target, exc), facts) from exc


def _with_facts(error: ConnectError, facts: dict[str, Any]) -> ConnectError:
    # Raised straight from here: an error kept in a local of the frame it leaves
    # makes a cycle (error, traceback, frame) that only a full collection frees.
    error.facts.update(facts)
    return error


@contextlib.contextmanager
def map_receive_errors(core: ClientCore) -> Iterator[None]:
    """Raise what went wrong on an open connection as ``no response from web socket``.

    A deadline that passed leaves the connection usable (``timed_out``); a reset
    or a TLS failure ends it, and the core remembers that.
    """
    try:
        yield
    except TimeoutError:
        raise NoResponse(timed_out=True) from None
    except OSError as exc:
        core.error = core.no_response()
        raise core.error from exc


def connect_error(target: Target, exc: OSError) -> ConnectError:
    """Say in words what an OS error while connecting means, without ``[Errno N]``."""
    # ssl is imported only for wss://; without it no error can be a TLS error.
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return _tls_error(target, exc)
    if isinstance(exc, socket.gaierror):
        return ConnectError(target.display, "dns", f"could not resolve host {target.host}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(target.display, "refused", "connection refused")
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ConnectError(target.display, "network", reason[:1].lower() + reason[1:])


def _tls_error(target: Target, exc: ssl.SSLError) -> ConnectError:
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = f"TLS certificate verify failed: {exc.verify_message}"
    else:
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        detail = f"TLS handshake failed: {reason}"
    return ConnectError(target.display, "tls", detail)
