"""Notification text: the default title and body, or a notifier's own templates in
Jinja2's sandbox.

A template sees the notice's fields (``monitor``, ``kind``, ``state``, ``severity``,
``error``, ``value``, ``since``, ``at``, ``labels``, ``link``) and nothing of the
process; what it renders is cut at :data:`MAX_TITLE` and :data:`MAX_BODY`
characters, and its arithmetic cannot build a huge text.

The sandbox keeps a template from the process's objects, not from its time and memory:
a loop over ``range(100000)`` twice, ``'x'.ljust(10**9)`` or ``lipsum(10**5)`` would
freeze or exhaust the agent. So the agent renders templates in a child process
bounded in CPU, memory and wall-clock time (:func:`.renderer.render_bounded`).
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_BODY",
    "MAX_TEMPLATE",
    "MAX_TITLE",
    "Template",
    "compile_template",
    "render",
    "when",
]

MAX_TEMPLATE = 10_000
MAX_TITLE = 250
MAX_BODY = 10_000
# Longest text or sequence an operator inside a template may make.
_MAX_MADE = 100_000


class _Sandbox(ImmutableSandboxedEnvironment):
    # ``'x' * 10**9`` and ``9**9**9`` would stall or exhaust the process: both are
    # checked before they run.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            # A chain of small powers grows too: the result's size is what is bounded.
            size = abs(left).bit_length() if isinstance(left, int) else 64
            if isinstance(right, int) and (abs(right) > 1024 or size * abs(right) > _MAX_MADE):
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for seq, count in ((left, right), (right, left)):
            made = isinstance(seq, str | list | tuple) and isinstance(count, int)
            if made and len(seq) * count > _MAX_MADE:
                raise SecurityError("result too long")
        return operator.mul(left, right)


@dataclass(frozen=True, slots=True)
class Template:
    """A notifier's template, checked: its source, compiled again where it is rendered."""

    source: str


def compile_template(text: str) -> Template:
    """``text`` checked as a sandboxed template, or ``TemplateSyntaxError``;
    ``ValueError`` when too long."""
    if len(text) > MAX_TEMPLATE:
        raise ValueError(f"a template is at most {MAX_TEMPLATE} characters")
    _ENVIRONMENT.from_string(text)
    return Template(text)


def when(value: Any) -> str:
    """Unix seconds as people read them: ``2026-12-24 22:00:00 UTC``."""
    if not isinstance(value, int | float):
        return ""
    moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


_ENVIRONMENT = _Sandbox(autoescape=False, keep_trailing_newline=False)
_ENVIRONMENT.filters["when"] = when


def render(
    template: Template | None,
    fields: Mapping[str, Any],
    default: Callable[[Mapping[str, Any]], str],
    limit: int,
) -> tuple[str, str | None]:
    """``template`` filled with ``fields`` (``default(fields)`` without one), cut at
    ``limit`` characters, and ``None``; when the template fails, the default text and
    why it failed, in one line: a broken template must not lose a notification.

    In this process, unbounded in time and memory: the agent calls
    :func:`.renderer.render_bounded`."""
    problem = None
    if template is None:
        text = default(fields)
    else:
        try:
            text = _ENVIRONMENT.from_string(template.source).render(**fields)
        except Exception as exc:  # a template's errors are as many as Python's
            text = default(fields)
            problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return (text if len(text) <= limit else text[: limit - 1] + "…"), problem
