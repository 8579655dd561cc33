"""The agent's configuration: YAML, validated whole, every error naming its field.

A field is named as a person would point at it in the file: ``monitors[2].interval``,
``modules.ws_echo.expect.regex``. Nothing here touches the network or the clock: the
same validation runs on start and on every reload.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Error
from ..options import OPTION_NAMES, Options, make_options
from ..plugin import Expectations, Pattern, Range, compile_regex
from ..redaction import redact, redact_query
from .alerting.config import AlertingConfig, parse_alerting
from .fields import (
    ConfigError,
    _duration,
    _kind,
    _known_fields,
    _mapping,
    _shown,
    parse_duration,
)

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_SIZE",
    "MAX_CONCURRENCY",
    "MAX_INTERVAL",
    "MAX_WORKERS",
    "MIN_INTERVAL",
    "AgentConfig",
    "ConfigError",
    "Module",
    "Monitor",
    "PageSettings",
    "Probe",
    "default_workers",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]

DEFAULT_LISTEN = "127.0.0.1:9814"
#: The largest reply a declarative check reads unless it sets ``max_size``: a check
#: judges a status, and a thousand checks in flight must not hold 16 MiB each.
DEFAULT_MAX_SIZE = 1024 * 1024
#: Bounds on what one agent is asked to do.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 7 * 86400.0
MAX_WORKERS = 64
MAX_CONCURRENCY = 10_000
#: Longest monitor name, label value and ``/probe`` target pattern list.
_MAX_LABEL_VALUE = 1024
_MAX_TARGETS = 100

# A monitor's name is a metric label and a path segment of the API.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Labels the agent sets itself; a monitor may not shadow them.
_RESERVED_LABELS = frozenset({"monitor", "phase", "result"})
_CALL_OPTIONS = frozenset(OPTION_NAMES) - {"timeout"}
_PROBE_FIELDS = frozenset({"send", "expect", "script", "env", "timeout"}) | _CALL_OPTIONS
# What a monitor says of its alerts: read by :func:`.alerting.config.parse_alerting`,
# and no part of what its check does.
_ALERT_FIELDS = frozenset({"alerts", "depends_on"})
_MONITOR_FIELDS = _PROBE_FIELDS | {"name", "url", "interval", "labels"} | _ALERT_FIELDS
_MODULE_FIELDS = _PROBE_FIELDS | {"targets", "send_credentials_to_any_target", "concurrency"}
_EXPECT_FIELDS = frozenset(
    {
        "contains",
        "regex",
        "json",
        "max_seconds",
        "warn_seconds",
        "cert_warn_days",
        "cert_crit_days",
    }
)
# Bounds on what aliases can make of a small file (a "billion laughs" document).
_MAX_DEPTH = 50
_MAX_VALUES = 1_000_000
_TOP_FIELDS = frozenset(
    {
        "listen",
        "defaults",
        "monitors",
        "modules",
        "concurrency",
        "retention",
        "workers",
        "redact_query",
        "page",
        "notifiers",
        "alerting",
        "maintenance",
    }
)
# The status page reloads its data at least once an hour, at most once a second.
_REFRESH = (1.0, 3600.0)


@dataclass(frozen=True, slots=True)
class Probe:
    """What one check does: a declarative exchange (``send``/``expect``) or a script.

    ``script`` is an absolute path when set; ``options`` carries the timeout and TLS.
    """

    options: Options
    send: str = "ping"
    expect: Expectations = field(default_factory=Expectations)
    script: str | None = None
    env: tuple[str, ...] = ()
    #: Query parameters whose values this check's messages hide, beyond
    #: :data:`~wsprobe.redaction.SECRET_WORDS` (the configuration's ``redact_query``).
    secret_words: tuple[str, ...] = ()

    @property
    def credentials(self) -> bool:
        """True when the check sends what the configuration holds: headers (an
        ``Authorization``, a cookie), or variables of the agent's environment."""
        return bool(self.options.headers or self.env)

    def shown(self, text: str) -> str:
        """``text`` (an error, a log line) without the values of secret query parameters."""
        return redact_query(text, self.secret_words)

    @property
    def timeout(self) -> float:
        """Seconds one check may take."""
        return self.options.timeout

    @property
    def prober(self) -> str:
        """The prober that runs this check (:data:`.probers.PROBERS`): ``script`` or
        ``websocket``."""
        return "script" if self.script is not None else "websocket"


@dataclass(frozen=True, slots=True)
class Monitor:
    """A named check on a schedule. ``url`` is ``None`` for scripted monitors.

    ``fingerprint`` is the validated entry as canonical JSON: a reload restarts a
    monitor only when it changes.
    """

    name: str
    url: str | None
    probe: Probe
    interval: float
    labels: tuple[tuple[str, str], ...]
    fingerprint: str

    @property
    def shown_url(self) -> str | None:
        """``url`` without ``user:password@`` nor secret query values, for anything
        people or programs read."""
        return None if self.url is None else redact(self.url, self.probe.secret_words)


@dataclass(frozen=True, slots=True)
class Module:
    """A ``/probe`` module: its check, the targets a caller may name (RE2 patterns,
    each matching a whole target; ``None``: any), and how many of its probes may run
    at once."""

    probe: Probe
    targets: tuple[Pattern, ...] | None
    concurrency: int

    def allows(self, target: str) -> bool:
        """True when a caller may probe ``target`` with this module.

        A query right after the authority (``ws://evil?.ok.example/``) is matched as
        ``ws://evil/?.ok.example/``: else a pattern for "any host ending in
        ``.ok.example``", ``ws://[^/]*\\.ok\\.example/.*``, would match a host it
        does not name.
        """
        if self.targets is None:
            return True
        authority = target.find("://") + 3 if "://" in target else 0
        ends = [i for i in (target.find(c, authority) for c in "/?#") if i >= 0]
        end = min(ends, default=len(target))
        if end < len(target) and target[end] == "?":
            target = f"{target[:end]}/{target[end:]}"
        return any(p.fullmatch(target) for p in self.targets)


def default_workers() -> int:
    """Worker processes for scripts when the configuration does not say: two, one on
    a single core (the agent's own process does the declarative checks)."""
    return min(2, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class PageSettings:
    """The status page's: ``group_by`` a label whose values group the monitors
    (``None``: one group), ``refresh`` the seconds between two updates of its data."""

    group_by: str | None = None
    refresh: float = 10.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The whole configuration, validated. ``alerting.page_url`` is ``None`` unless the
    file sets it: the agent then links to the address it listens on."""

    listen: str = DEFAULT_LISTEN
    monitors: tuple[Monitor, ...] = ()
    modules: Mapping[str, Module] = field(default_factory=dict)
    concurrency: int = 100
    retention: float = 86400.0
    workers: int = field(default_factory=default_workers)
    page: PageSettings = field(default_factory=PageSettings)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and validate ``path``; scripts are found relative to its directory, the
    ``${VAR}`` of notifier URLs in ``environ`` (the process's environment by default)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError("", f"cannot read {path}: {reason}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"cannot read {path}: not UTF-8 text") from exc
    return parse_config(text, base=path.resolve().parent, environ=environ)


def parse_config(
    text: str, *, base: Path, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """Validate a configuration's YAML text; raise :class:`ConfigError` at the first fault.
    ``environ``: where notifier URLs' ``${VAR}`` come from (default: the process's)."""
    import yaml

    try:
        document = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError("", f"invalid YAML: nested deeper than {_MAX_DEPTH} levels") from None
    _check_size(document, {}, set())
    if document is None:
        document = {}
    top = _mapping("", document)
    _known_fields("", top, _TOP_FIELDS)
    words = _words("redact_query", top.get("redact_query", []))
    defaults = _mapping("defaults", top.get("defaults", {}))
    _known_fields("defaults", defaults, frozenset({"interval", "timeout"}))
    default_interval = _interval("defaults.interval", defaults.get("interval", "30s"))
    default_timeout = _duration("defaults.timeout", defaults.get("timeout", "10s"))
    common = _Common(base, default_interval, default_timeout, words)
    monitors = _monitors(top.get("monitors", []), common)
    concurrency = _bounded_int("concurrency", top.get("concurrency", 100), MAX_CONCURRENCY)
    modules_field = _mapping("modules", top.get("modules", {}))
    modules = {
        name: _module(f"modules.{name}", raw, common, concurrency)
        for name, raw in modules_field.items()
    }
    listen = top.get("listen", DEFAULT_LISTEN)
    if not isinstance(listen, str):
        raise ConfigError("listen", f"expected HOST:PORT, got {_shown(listen)}")
    parse_listen(listen, where="listen")
    return AgentConfig(
        listen=listen,
        monitors=monitors,
        modules=modules,
        concurrency=concurrency,
        retention=_duration("retention", top.get("retention", "1d")),
        workers=_bounded_int("workers", top["workers"], MAX_WORKERS)
        if "workers" in top
        else default_workers(),
        page=_page(top.get("page", {})),
        alerting=parse_alerting(top, environ=os.environ if environ is None else environ),
    )


def _page(value: Any) -> PageSettings:
    page = _mapping("page", value)
    _known_fields("page", page, frozenset({"group_by", "refresh"}))
    group_by = page.get("group_by")
    if group_by is not None and (
        not isinstance(group_by, str)
        or not _LABEL.fullmatch(group_by)
        or group_by.startswith("__")
    ):
        raise ConfigError("page.group_by", f"{_shown(group_by)} is not a Prometheus label name")
    refresh = _duration("page.refresh", page.get("refresh", "10s"))
    low, high = _REFRESH
    if not low <= refresh <= high:
        raise ConfigError("page.refresh", f"expected 1s to 1h, got {_shown(page['refresh'])}")
    return PageSettings(group_by=group_by, refresh=refresh)


@dataclass(frozen=True, slots=True)
class _Common:
    """What every entry is read against: the scripts' directory, the defaults, the
    secret words of ``redact_query``."""

    base: Path
    interval: float
    timeout: float
    words: tuple[str, ...]


@functools.cache
def _loader() -> type[Any]:
    """PyYAML's safe loader (the C one where built), refusing a key given twice in one
    mapping (``<<`` merges may still be overridden)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc,valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=False)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: refused as such below
                        continue
                    if duplicate:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {_shown(key)}",
                            key_node.start_mark,
                        )
            return super().construct_mapping(node, deep=deep)

    return Loader


def _check_size(value: Any, sizes: dict[int, int], path: set[int]) -> int:
    # Counts the values the document stands for once aliases are expanded, visiting each
    # shared collection once, so that a hostile file cannot make validation explode.
    if not isinstance(value, dict | list):
        return 1
    key = id(value)
    if key in path:
        raise ConfigError("", "invalid YAML: an alias refers to a collection that contains it")
    if key in sizes:
        return sizes[key]
    if len(path) >= _MAX_DEPTH:
        raise ConfigError("", f"invalid YAML: nested deeper than {_MAX_DEPTH} levels")
    path.add(key)
    children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    size = 1 + sum(_check_size(child, sizes, path) for child in children)
    path.discard(key)
    if size > _MAX_VALUES:
        raise ConfigError("", f"invalid YAML: more than {_MAX_VALUES} values once aliases expand")
    sizes[key] = size
    return size


def parse_listen(text: str, *, where: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(where, f"expected HOST:PORT, got {_shown(text)}")
    return host, int(port)


def _monitors(value: Any, common: _Common) -> tuple[Monitor, ...]:
    if not isinstance(value, list):
        raise ConfigError("monitors", f"expected a list, got {_kind(value)}")
    seen: dict[str, int] = {}
    monitors = []
    for index, raw in enumerate(value):
        where = f"monitors[{index}]"
        entry = _mapping(where, raw)
        _known_fields(where, entry, _MONITOR_FIELDS)
        if "name" not in entry:
            raise ConfigError(f"{where}.name", "required")
        name = entry["name"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                f"{where}.name",
                f"expected letters, digits, '.', '_' or '-' (at most 128), got {_shown(name)}",
            )
        if name in seen:
            raise ConfigError(f"{where}.name", f'"{name}" is already monitors[{seen[name]}]')
        seen[name] = index
        url = entry.get("url")
        if (url is None) == (entry.get("script") is None):
            raise ConfigError(where, "needs exactly one of url and script")
        if url is not None:
            url = _url(f"{where}.url", url)
        probe = _probe(where, entry, common)
        interval = _interval(f"{where}.interval", entry.get("interval", common.interval))
        labels = _labels(f"{where}.labels", entry.get("labels", {}))
        # A change to the monitor's alerts alone does not restart its check.
        check = {key: value for key, value in entry.items() if key not in _ALERT_FIELDS}
        fingerprint = json.dumps(
            {"entry": check, "interval": interval, "timeout": probe.timeout},
            sort_keys=True,
            default=str,
        )
        monitors.append(Monitor(name, url, probe, interval, labels, fingerprint))
    return tuple(monitors)


def _module(where: str, value: Any, common: _Common, concurrency: int) -> Module:
    entry = _mapping(where, value)
    _known_fields(where, entry, _MODULE_FIELDS)
    probe = _probe(where, entry, common)
    targets = None
    if "targets" in entry:
        raw = entry["targets"]
        patterns = [raw] if isinstance(raw, str) else raw
        if not isinstance(patterns, list) or not patterns or len(patterns) > _MAX_TARGETS:
            raise ConfigError(
                f"{where}.targets",
                f"expected a pattern or a list of 1 to {_MAX_TARGETS}, got {_shown(raw)}",
            )
        targets = tuple(
            _regex(f"{where}.targets[{index}]" if len(patterns) > 1 else f"{where}.targets", p)
            for index, p in enumerate(patterns)
        )
    anywhere = entry.get("send_credentials_to_any_target", False)
    if not isinstance(anywhere, bool):
        raise ConfigError(
            f"{where}.send_credentials_to_any_target",
            f"expected true or false, got {_shown(anywhere)}",
        )
    if probe.credentials and targets is None and not anywhere:
        field_name = "headers" if probe.options.headers else "env"
        raise ConfigError(
            f"{where}.{field_name}",
            "a module that sends credentials needs targets: (the URLs a caller may name), "
            "or send_credentials_to_any_target: true",
        )
    limit = _bounded_int(
        f"{where}.concurrency", entry.get("concurrency", max(1, concurrency // 2)), concurrency
    )
    return Module(probe, targets, limit)


def _probe(where: str, entry: Mapping[str, Any], common: _Common) -> Probe:
    timeout = _duration(f"{where}.timeout", entry.get("timeout", common.timeout))
    options = _options(where, entry, timeout)
    base = common.base
    script = entry.get("script")
    if script is not None:
        if not isinstance(script, str) or not script:
            raise ConfigError(f"{where}.script", f"expected a file name, got {_shown(script)}")
        for name in ("send", "expect"):
            if name in entry:
                raise ConfigError(f"{where}.{name}", "a scripted check has no send or expect")
        path = (base / script).resolve()
        if not path.is_file():
            raise ConfigError(f"{where}.script", f"no such file: {path}")
        return Probe(
            options=options,
            script=str(path),
            env=_env(f"{where}.env", entry),
            secret_words=common.words,
        )
    if "env" in entry:
        raise ConfigError(f"{where}.env", "only a scripted check reads the environment")
    send = entry.get("send", "ping")
    if not isinstance(send, str):
        raise ConfigError(f"{where}.send", f"expected text, got {_shown(send)}")
    expect = _expect(f"{where}.expect", entry.get("expect", {}))
    return Probe(options=options, send=send, expect=expect, secret_words=common.words)


def _options(where: str, entry: Mapping[str, Any], timeout: float) -> Options:
    values = {name: entry[name] for name in _CALL_OPTIONS if name in entry}
    values.setdefault("max_size", DEFAULT_MAX_SIZE)
    try:
        return make_options(timeout=timeout, **values)
    except Error as exc:
        # make_options names the option; the config names where it is.
        name = getattr(exc, "name", "")
        reason = getattr(exc, "reason", str(exc))
        raise ConfigError(f"{where}.{name}", reason) from None


def _expect(where: str, value: Any) -> Expectations:
    entry = _mapping(where, value)
    _known_fields(where, entry, _EXPECT_FIELDS)
    contains = entry.get("contains")
    if contains is not None and not isinstance(contains, str):
        raise ConfigError(f"{where}.contains", f"expected text, got {_shown(contains)}")
    regex = None
    if "regex" in entry:
        pattern = entry["regex"]
        regex = _regex(f"{where}.regex", pattern)
    fields = _mapping(f"{where}.json", entry.get("json", {}))
    json_fields = tuple(_json_fields(fields, ""))
    return Expectations(
        contains=contains,
        regex=regex,
        json_fields=json_fields,
        warning=_seconds_range(f"{where}.warn_seconds", entry.get("warn_seconds")),
        critical=_seconds_range(f"{where}.max_seconds", entry.get("max_seconds")),
        cert_warn_days=_days(f"{where}.cert_warn_days", entry.get("cert_warn_days")),
        cert_crit_days=_days(f"{where}.cert_crit_days", entry.get("cert_crit_days")),
    )


def _json_fields(fields: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    # {status: ok, data: {n: 1}} means the fields status and data.n, as --expect-json does.
    pairs: list[tuple[str, Any]] = []
    for key, wanted in fields.items():
        path = f"{prefix}{key}"
        if isinstance(wanted, dict) and wanted:
            pairs += _json_fields(wanted, f"{path}.")
        else:
            pairs.append((path, wanted))
    return pairs


def _seconds_range(where: str, value: Any) -> Range | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(where, f"expected a positive number of seconds, got {_shown(value)}")
    return Range.parse(f"{value:g}")


def _days(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(where, f"expected a whole number of days, got {_shown(value)}")
    return value


def _env(where: str, entry: Mapping[str, Any]) -> tuple[str, ...]:
    names = entry.get("env", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(where, f"expected a list of variable names, got {_shown(names)}")
    return tuple(names)


def _labels(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    labels = _mapping(where, value)
    pairs = []
    for name, text in labels.items():
        if not isinstance(name, str) or not _LABEL.fullmatch(name) or name.startswith("__"):
            raise ConfigError(where, f"{_shown(name)} is not a Prometheus label name")
        if name in _RESERVED_LABELS:
            raise ConfigError(f"{where}.{name}", "reserved by the agent")
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise ConfigError(f"{where}.{name}", f"expected text, got {_shown(text)}")
        shown = str(text)
        if not shown.isprintable() or len(shown) > _MAX_LABEL_VALUE:
            raise ConfigError(
                f"{where}.{name}",
                f"expected one line of printable text (at most {_MAX_LABEL_VALUE}), "
                f"got {_shown(shown)}",
            )
        pairs.append((name, shown))
    return tuple(sorted(pairs))


def _url(where: str, value: Any) -> str:
    from ..url import parse_url

    if not isinstance(value, str):
        raise ConfigError(where, f"expected a ws:// or wss:// URL, got {_shown(value)}")
    try:
        parse_url(value)
    except Error as exc:
        raise ConfigError(where, str(exc)) from None
    return value


def _interval(where: str, value: Any) -> float:
    seconds = _duration(where, value)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ConfigError(where, f"expected 10ms to 7d, got {_shown(value)}")
    return seconds


def _regex(where: str, value: Any) -> Pattern:
    from ..errors import InvalidOption

    if not isinstance(value, str):
        raise ConfigError(where, f"expected text, got {_shown(value)}")
    try:
        return compile_regex(value)
    except InvalidOption as exc:
        raise ConfigError(where, f"invalid regular expression: {exc.reason}") from None


def _words(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(word, str) and word and word.isprintable() for word in value
    ):
        raise ConfigError(where, f"expected a list of parameter names, got {_shown(value)}")
    return tuple(value)


def _bounded_int(where: str, value: Any, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ConfigError(where, f"expected a whole number from 1 to {most}, got {_shown(value)}")
    return value
