"""A notification to send: what the alert engine decided, as the outbox keeps it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FIRING", "KINDS", "REMINDER", "RESOLVED", "TEST", "Notice"]

FIRING = "firing"
RESOLVED = "resolved"
REMINDER = "reminder"
TEST = "test"
KINDS = (FIRING, RESOLVED, REMINDER, TEST)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification about one monitor.

    ``state`` is the latest run's (``critical``, ``unknown``, ``warning``, ``ok``);
    ``severity`` the alert's (``critical`` or ``warning``), fixed when it fired;
    ``since`` when the outage began (its first failed run) and ``at`` when this
    notice was decided, both Unix seconds; ``resolved_at`` is set on a resolved one.
    """

    kind: str
    monitor: str
    state: str
    severity: str
    since: float
    at: float
    error: str | None = None
    value: float | str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    link: str | None = None

    def fields(self) -> dict[str, Any]:
        """What templates see."""
        fields = asdict(self)
        fields["labels"] = dict(self.labels)
        return fields

    def to_json(self) -> str:
        """The outbox's form."""
        return json.dumps(self.fields(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Notice:
        """Read back :meth:`to_json`; ``ValueError`` (or ``TypeError``) for anything else."""
        raw = json.loads(text)
        labels = raw.get("labels", {}) if isinstance(raw, Mapping) else None
        if not isinstance(labels, Mapping):
            raise TypeError("not a notice")
        notice = cls(**{**raw, "labels": tuple(sorted(labels.items()))})
        if notice.kind not in KINDS or not isinstance(notice.monitor, str):
            raise ValueError("not a notice")
        return notice
