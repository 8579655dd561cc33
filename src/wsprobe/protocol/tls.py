"""TLS for ``wss://``: client contexts built once and reused, certificate facts."""

from __future__ import annotations

import functools
import os
import stat
from typing import TYPE_CHECKING

from ..errors import InvalidOption

if TYPE_CHECKING:
    import datetime
    import ssl

__all__ = ["certificate_expiry", "tls_context"]


def tls_context(cafile: str | None, insecure: bool) -> ssl.SSLContext:
    """The client TLS context for these settings, built once and then reused.

    Building one from the system store costs about 20 ms; a call must not pay it.
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are part of the key, so changing them
    takes effect on the next call. A bundle that cannot be loaded raises
    :class:`~wsprobe.errors.InvalidOption` naming ``cafile``.
    """
    return _cached_context(
        cafile, insecure, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    )


@functools.lru_cache(maxsize=32)
def _cached_context(
    cafile: str | None, insecure: bool, _cert_file: str | None, _cert_dir: str | None
) -> ssl.SSLContext:
    import ssl  # only wss:// needs it, and it costs 5 ms to import

    try:
        # A FIFO or a device would block the reader until someone writes to it.
        if cafile is not None and not stat.S_ISREG(os.stat(cafile).st_mode):
            raise InvalidOption("cafile", f"cannot load {cafile}: not a regular file")
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidOption("cafile", f"cannot load {cafile}: {reason.lower()}") from exc
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def certificate_expiry(tls: ssl.SSLSocket | ssl.SSLObject) -> datetime.datetime | None:
    """When the server's certificate expires; ``None`` when it was not verified.

    Python only decodes a certificate it verified, so ``insecure`` calls have none.
    """
    import datetime
    import ssl

    not_after = (tls.getpeercert() or {}).get("notAfter")
    if not isinstance(not_after, str):
        return None
    seconds = ssl.cert_time_to_seconds(not_after)
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
