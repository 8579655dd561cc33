"""Compact JSON text: what ``json.encode`` gives a script, what the store and the cache
keep, what ``wsprobe run`` prints."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["encode"]


def encode(value: Any) -> str:
    """Compact JSON of ``value``: no spaces, object keys sorted, non-ASCII kept as UTF-8.

    Raises :class:`ValueError` whose text is the reason in a few words:
    ``NaN or infinity is not JSON``, ``a set is not JSON``.
    """
    try:
        return json.dumps(
            value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
    except ValueError:
        raise ValueError("NaN or infinity is not JSON") from None
    except TypeError as exc:
        # json names the first offending object's type in its message only.
        kind = str(exc).removeprefix("Object of type ").partition(" ")[0] or "value"
        raise ValueError(f"a {kind} is not JSON") from None
