"""Alerts: when a monitor fails for long enough, people are told, once per outage,
through Apprise's services or Prometheus Alertmanager, and told when it recovers.

:func:`~.config.parse_alerting` reads the configuration, :class:`~.service.Alerting`
runs it in the agent and :func:`~.service.send_test_notification` tries one notifier. Needs
the ``agent`` extra (Apprise, Jinja2, aiohttp).
"""

from __future__ import annotations

__all__: list[str] = []
