"""Identifiers: ``uuid.uuid4()``."""

from __future__ import annotations

import uuid

__all__ = ["uuid4"]


def uuid4() -> str:
    """A random (version 4) UUID in the 8-4-4-4-12 lower-case hex form.

    Its 122 random bits come from ``os.urandom``, the system's cryptographic source.
    """
    return str(uuid.uuid4())
