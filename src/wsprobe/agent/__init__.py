"""``wsprobe agent``: monitors on a schedule, Prometheus ``/metrics`` and ``/probe``,
results history in SQLite and a status page, in one long-running process and its script workers.

Needs the ``agent`` extra (pyyaml, prometheus-client, aiohttp); importing this
package loads none of them, so ``import wsprobe`` stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
