"""The open-file limit of a command that starts workers (``run``, ``check --script``,
``agent``).

Below what the event loop and the workers' pipes need, the process fails wherever
its next descriptor is refused, often inside uvloop, which reports it as some other
error or aborts. So the limit is checked before: the soft limit is raised to the
hard one (as each worker does for its scripts), and a hard limit below the need is
one line that says what to do.
"""

from __future__ import annotations

import contextlib
import errno

__all__ = ["enough_open_files", "restore_open_files", "too_many_open_files", "unexpected"]

#: The limit (soft, hard) before :func:`enough_open_files` raised it.
_raised_from: list[tuple[int, int]] = []


def enough_open_files(needed: int) -> str | None:
    """Raise the soft open-file limit to the hard one; the one-line reason (without
    the command's name) when that is below ``needed``."""
    import resource  # here: `send` and `check URL` never need it

    from ..services.descriptors import open_file_limit, too_few_files

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        _raised_from.append((soft, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = open_file_limit()
    return too_few_files(limit, needed) if limit < needed else None


def restore_open_files() -> None:
    """Put back the limit :func:`enough_open_files` raised: a program that ran a
    command through :func:`wsprobe.cli.main` keeps its own."""
    if _raised_from:
        import resource

        # A program that lowered its hard limit since keeps the lower one.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, _raised_from[0])
        _raised_from.clear()


def too_many_open_files(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised while handling, is the process or
    the system running out of descriptors."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.EMFILE, errno.ENFILE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def unexpected(exc: Exception) -> str:
    """The one line for an exception no command expected: running out of
    descriptors, or a bug of ours."""
    if too_many_open_files(exc):
        from ..services.descriptors import open_file_limit

        return f"too many open files (the open-file limit is {open_file_limit()}): raise it"
    return f"internal error: {type(exc).__name__}: {exc}"
