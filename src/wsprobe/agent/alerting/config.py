"""The alerting parts of the agent's configuration: ``notifiers``, ``alerting``,
``maintenance`` and each monitor's ``alerts`` and ``depends_on``.

Validated whole at load, every error naming its field as the agent's other
configuration errors do. Notifier URLs may hold secrets: ``${VAR}`` takes them from
the environment, and only their privacy forms (:attr:`Destination.shown`) are ever
shown, in errors too.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import TemplateSyntaxError

from ...plugin import State
from ..fields import ConfigError, _duration, _kind, _known_fields, _mapping, _shown
from .template import Template, compile_template
from .windows import WEEKDAYS, OneOff, Weekly, Window

__all__ = [
    "ALERTMANAGER",
    "APPRISE",
    "AlertRule",
    "AlertingConfig",
    "Destination",
    "Notifier",
    "parse_alerting",
]

APPRISE = "apprise"
ALERTMANAGER = "alertmanager"

#: Bounds on what one file may ask for.
MAX_NOTIFIERS = 100
MAX_URLS = 20
MAX_THRESHOLD = 1000
MAX_REMIND = 30 * 86400.0
MAX_WINDOWS = 1000
MAX_ONE_OFF = 366 * 86400.0
MAX_WEEKLY = 7 * 86400.0
MAX_DEPENDENCIES = 100

_NOTIFIER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ALERTING_FIELDS = frozenset(
    {
        "notify",
        "failure_threshold",
        "success_threshold",
        "remind_every",
        "send_resolved",
        "on",
        "page_url",
    }
)
_RULE_FIELDS = _ALERTING_FIELDS - {"page_url"}
_NOTIFIER_FIELDS = frozenset({"urls", "alertmanager", "title", "body"})
_WINDOW_FIELDS = frozenset({"monitors", "start", "duration", "every", "at", "timezone"})
_ON_STATES = {state.name.lower(): state for state in State if state is not State.OK}


@dataclass(frozen=True, slots=True)
class Destination:
    """One URL of a notifier: where one copy of each notification goes.

    ``url`` may hold a secret and is used only to send; ``shown`` is its privacy
    form. ``key`` names the destination in the outbox: it stays the same while the
    notifier's name, kind and URL do, wherever the URL sits in the list.
    """

    notifier: str
    kind: str
    url: str
    shown: str
    key: str


@dataclass(frozen=True, slots=True)
class Notifier:
    """A named set of destinations, with optional ``title``/``body`` templates."""

    name: str
    destinations: tuple[Destination, ...]
    title: Template | None = None
    body: Template | None = None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """When a monitor's alert fires and resolves, and whom it tells.

    ``on``: the states a run counts as failed in; any other state counts as a
    success. ``remind_every`` 0: no reminders.
    """

    notify: tuple[str, ...] = ()
    failure_threshold: int = 3
    success_threshold: int = 2
    remind_every: float = 0.0
    send_resolved: bool = True
    on: frozenset[State] = frozenset({State.CRITICAL, State.UNKNOWN})


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """Everything about alerts. ``rules`` has an entry for each monitor whose alerts
    are on; ``depends_on`` the parents of the monitors that have some; ``page_url``
    the agent's page as people reach it (the links in notifications)."""

    notifiers: Mapping[str, Notifier] = field(default_factory=dict)
    rules: Mapping[str, AlertRule] = field(default_factory=dict)
    depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    maintenance: tuple[Window, ...] = ()
    page_url: str | None = None

    def destinations(self, names: Iterable[str]) -> list[Destination]:
        """The destinations of the notifiers ``names``, in order."""
        return [d for name in names for d in self.notifiers[name].destinations]

    def link(self, monitor: str) -> str | None:
        """Where a person sees ``monitor`` on the agent's page."""
        from urllib.parse import quote

        return None if self.page_url is None else f"{self.page_url}#{quote(monitor, safe='')}"


def parse_alerting(document: Mapping[str, Any], *, environ: Mapping[str, str]) -> AlertingConfig:
    """The alerting configuration in a whole validated-YAML ``document`` (its
    ``notifiers``, ``alerting``, ``maintenance`` and ``monitors[*].alerts`` and
    ``monitors[*].depends_on``); ``${VAR}`` in URLs comes from ``environ``.

    Monitor names are taken as the agent's configuration checked them.
    """
    notifiers = _notifiers(document.get("notifiers", {}), environ)
    raw = _mapping("alerting", _yaml_on(document.get("alerting", {})))
    _known_fields("alerting", raw, _ALERTING_FIELDS)
    defaults = _rule("alerting", raw, AlertRule(), notifiers)
    page_url = raw.get("page_url")
    if page_url is not None:
        page_url = _http_url("alerting.page_url", page_url)
        page_url = page_url if page_url.endswith("/") else f"{page_url}/"
    monitors = document.get("monitors", [])
    entries = [
        (f"monitors[{index}]", entry)
        for index, entry in enumerate(monitors if isinstance(monitors, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    ]
    names = {entry["name"] for _, entry in entries}
    rules: dict[str, AlertRule] = {}
    depends_on: dict[str, tuple[str, ...]] = {}
    for where, entry in entries:
        name = entry["name"]
        alerts = entry.get("alerts", {})
        if alerts is not False:
            overrides = _mapping(f"{where}.alerts", _yaml_on(alerts))
            _known_fields(f"{where}.alerts", overrides, _RULE_FIELDS)
            rules[name] = _rule(f"{where}.alerts", overrides, defaults, notifiers)
        if "depends_on" in entry:
            depends_on[name] = _parents(f"{where}.depends_on", entry["depends_on"], name, names)
    _check_cycles(depends_on, {entry["name"]: where for where, entry in entries})
    return AlertingConfig(
        notifiers=notifiers,
        rules=rules,
        depends_on=depends_on,
        maintenance=_windows(document.get("maintenance", []), names),
        page_url=page_url,
    )


def _yaml_on(value: Any) -> Any:
    # YAML 1.1 reads an unquoted ``on:`` key as ``true``: the field is spelled as people
    # write it, so the key is taken back.
    if isinstance(value, dict) and True in value and "on" not in value:
        return {("on" if key is True else key): item for key, item in value.items()}
    return value


def _notifiers(value: Any, environ: Mapping[str, str]) -> dict[str, Notifier]:
    raw = _mapping("notifiers", value)
    if len(raw) > MAX_NOTIFIERS:
        raise ConfigError("notifiers", f"at most {MAX_NOTIFIERS} notifiers, got {len(raw)}")
    notifiers = {}
    for name, entry_value in raw.items():
        where = f"notifiers.{name}"
        if not _NOTIFIER_NAME.fullmatch(name):
            raise ConfigError(
                where, "a notifier's name is letters, digits, '.', '_' or '-' (at most 64)"
            )
        entry = _mapping(where, entry_value)
        _known_fields(where, entry, _NOTIFIER_FIELDS)
        destinations = [
            _apprise(f"{where}.urls[{index}]", name, url, environ)
            for index, url in enumerate(_url_list(f"{where}.urls", entry.get("urls", [])))
        ]
        destinations += [
            _alertmanager(f"{where}.alertmanager[{index}]", name, url, environ)
            for index, url in enumerate(
                _url_list(f"{where}.alertmanager", entry.get("alertmanager", []))
            )
        ]
        if not destinations:
            raise ConfigError(where, "needs urls or alertmanager")
        notifiers[name] = Notifier(
            name,
            tuple(destinations),
            title=_template(f"{where}.title", entry.get("title")),
            body=_template(f"{where}.body", entry.get("body")),
        )
    return notifiers


def _url_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise ConfigError(where, f"expected a list of URLs, got {_kind(value)}")
    if len(value) > MAX_URLS:
        raise ConfigError(where, f"at most {MAX_URLS} URLs, got {len(value)}")
    return value


def _expand(where: str, text: str, environ: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(where, f"environment variable {name} is not set")
        return environ[name]

    return _VARIABLE.sub(value, text)


def _apprise(where: str, notifier: str, text: str, environ: Mapping[str, str]) -> Destination:
    from apprise import Apprise

    url = _expand(where, text, environ)
    plugin = Apprise.instantiate(url) if url.isprintable() else None
    if plugin is None:
        # Only the scheme is told: the rest may be a secret.
        scheme = url.partition("://")[0] if "://" in url else ""
        said = f" ({_shown(scheme)}://…)" if scheme.isalnum() and len(scheme) <= 32 else ""
        raise ConfigError(where, f"not a URL Apprise can send to{said}")
    # Apprise's privacy form, without the query: its defaults are noise in a log line.
    shown = str(plugin.url(privacy=True)).partition("?")[0]  # type: ignore[no-untyped-call]
    return Destination(notifier, APPRISE, url, shown, _key(notifier, url))


def _alertmanager(where: str, notifier: str, text: str, environ: Mapping[str, str]) -> Destination:
    from ...redaction import redact

    url = _http_url(where, _expand(where, text, environ), secret=True).rstrip("/")
    return Destination(notifier, ALERTMANAGER, url, redact(url), _key(notifier, url))


def _http_url(where: str, value: Any, *, secret: bool = False) -> str:
    from yarl import URL

    expected = "expected an http:// or https:// URL"
    if not isinstance(value, str):
        raise ConfigError(where, f"{expected}, got {_kind(value)}")
    try:
        url = URL(value)
        valid = url.scheme in ("http", "https") and bool(url.host) and value.isprintable()
        valid = valid and url.port is not None
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(where, expected if secret else f"{expected}, got {_shown(value)}")
    return value


def _key(notifier: str, url: str) -> str:
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{notifier}/{digest}"


def _template(where: str, value: Any) -> Template | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(where, f"expected a template, got {_kind(value)}")
    try:
        return compile_template(value)
    except TemplateSyntaxError as exc:
        raise ConfigError(where, f"invalid template at line {exc.lineno}: {exc.message}") from None
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None


def _rule(
    where: str, raw: Mapping[str, Any], base: AlertRule, notifiers: Mapping[str, Notifier]
) -> AlertRule:
    notify = base.notify
    if "notify" in raw:
        notify = _names(f"{where}.notify", raw["notify"], notifiers, "notifier")
    on = base.on
    if "on" in raw:
        value = raw["on"]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where}.on", f"expected a list of states, got {_kind(value)}")
        for index, state in enumerate(value):
            if not isinstance(state, str) or state not in _ON_STATES:
                raise ConfigError(
                    f"{where}.on[{index}]",
                    f"expected critical, unknown or warning, got {_shown(state)}",
                )
        on = frozenset(_ON_STATES[state] for state in value)
    send_resolved = raw.get("send_resolved", base.send_resolved)
    if not isinstance(send_resolved, bool):
        raise ConfigError(
            f"{where}.send_resolved", f"expected true or false, got {_shown(send_resolved)}"
        )
    return AlertRule(
        notify=notify,
        failure_threshold=_threshold(f"{where}.failure_threshold", raw, base.failure_threshold),
        success_threshold=_threshold(f"{where}.success_threshold", raw, base.success_threshold),
        remind_every=_remind(f"{where}.remind_every", raw.get("remind_every", base.remind_every)),
        send_resolved=send_resolved,
        on=on,
    )


def _threshold(where: str, raw: Mapping[str, Any], default: int) -> int:
    name = where.rpartition(".")[2]
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THRESHOLD:
        raise ConfigError(
            where, f"expected a whole number from 1 to {MAX_THRESHOLD}, got {_shown(value)}"
        )
    return value


def _remind(where: str, value: Any) -> float:
    if value == 0 and not isinstance(value, bool):
        return 0.0
    seconds = _duration(where, value)
    if not 60 <= seconds <= MAX_REMIND:
        raise ConfigError(where, f"expected 0 or from 1m to 30d, got {_shown(value)}")
    return seconds


def _parents(where: str, value: Any, name: str, names: set[str]) -> tuple[str, ...]:
    if isinstance(value, list) and len(value) > MAX_DEPENDENCIES:
        raise ConfigError(where, f"at most {MAX_DEPENDENCIES} monitors, got {len(value)}")
    if isinstance(value, list) and name in value:
        raise ConfigError(f"{where}[{value.index(name)}]", "a monitor cannot depend on itself")
    return _names(where, value, names, "monitor")


def _names(where: str, value: Any, known: Collection[str], what: str) -> tuple[str, ...]:
    # A list of names of things configured elsewhere (notifiers, monitors), once each.
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ConfigError(where, f"expected {what} names, got {_kind(value)}")
    for index, name in enumerate(value):
        if name not in known:
            raise ConfigError(f"{where}[{index}]", f"no {what} {_shown(name)}")
    return tuple(dict.fromkeys(value))


def _check_cycles(depends_on: Mapping[str, Sequence[str]], where: Mapping[str, str]) -> None:
    # Depth-first, iteratively: a long chain must not exhaust Python's stack.
    done: set[str] = set()
    for root in depends_on:
        if root in done:
            continue
        path = [root]
        on_path = {root}
        stack = [iter(depends_on.get(root, ()))]
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if parent in on_path:
                cycle = [*path[path.index(parent) :], parent]
                raise ConfigError(f"{where[root]}.depends_on", f"a cycle: {' -> '.join(cycle)}")
            if parent not in done:
                path.append(parent)
                on_path.add(parent)
                stack.append(iter(depends_on.get(parent, ())))


def _windows(value: Any, names: set[str]) -> tuple[Window, ...]:
    if not isinstance(value, list):
        raise ConfigError("maintenance", f"expected a list, got {_kind(value)}")
    if len(value) > MAX_WINDOWS:
        raise ConfigError("maintenance", f"at most {MAX_WINDOWS} windows, got {len(value)}")
    return tuple(_window(f"maintenance[{index}]", raw, names) for index, raw in enumerate(value))


def _window(where: str, value: Any, names: set[str]) -> Window:
    entry = _mapping(where, value)
    _known_fields(where, entry, _WINDOW_FIELDS)
    monitors = None
    if "monitors" in entry:
        monitors = frozenset(_names(f"{where}.monitors", entry["monitors"], names, "monitor"))
    if "duration" not in entry:
        raise ConfigError(f"{where}.duration", "required")
    duration = _duration(f"{where}.duration", entry["duration"])
    zone_name = entry.get("timezone", "UTC")
    zone = _zone(f"{where}.timezone", zone_name)
    if ("start" in entry) == ("every" in entry):
        raise ConfigError(where, "needs exactly one of start and every")
    if "start" in entry:
        if "at" in entry:
            raise ConfigError(f"{where}.at", "a one-off window has a start, not at")
        if duration > MAX_ONE_OFF:
            raise ConfigError(f"{where}.duration", "a one-off window lasts at most 366d")
        return OneOff(_start(f"{where}.start", entry["start"], zone), duration, monitors)
    every = entry["every"]
    if not isinstance(every, list) or not every:
        raise ConfigError(
            f"{where}.every", f"expected [daily] or a list of weekdays, got {_kind(every)}"
        )
    days: set[int] = set()
    for index, day in enumerate(every):
        if day == "daily":
            days.update(range(7))
        elif day in WEEKDAYS:
            days.add(WEEKDAYS.index(day))
        else:
            raise ConfigError(
                f"{where}.every[{index}]",
                f"expected daily or one of {', '.join(WEEKDAYS)}, got {_shown(day)}",
            )
    if "at" not in entry:
        raise ConfigError(f"{where}.at", "required")
    at = entry["at"]
    match = _AT.fullmatch(at) if isinstance(at, str) else None
    if match is None:
        raise ConfigError(f"{where}.at", f"expected HH:MM (00:00 to 23:59), got {_shown(at)}")
    if duration > MAX_WEEKLY:
        raise ConfigError(f"{where}.duration", "a recurring window lasts at most 7d")
    return Weekly(
        frozenset(days),
        datetime.time(int(match.group(1)), int(match.group(2))),
        duration,
        zone_name,
        monitors,
    )


def _zone(where: str, value: Any) -> ZoneInfo:
    if not isinstance(value, str) or not value or not value.isprintable() or len(value) > 64:
        raise ConfigError(
            where, f"expected an IANA time zone like Europe/Berlin, got {_shown(value)}"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            where, f"expected an IANA time zone like Europe/Berlin, got {_shown(value)}"
        ) from None


def _start(where: str, value: Any, zone: ZoneInfo) -> float:
    # YAML reads an unquoted timestamp as a datetime already.
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            moment = None
    else:
        moment = None
    if moment is None:
        raise ConfigError(where, f"expected a time like 2026-12-24T22:00:00Z, got {_shown(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()
