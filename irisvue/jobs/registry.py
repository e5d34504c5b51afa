"""Job kinds → handler functions, and the periodic tasks of an app.

A handler is `fn(job: Job) -> dict | None`; its return value is stored in
`Job.result`. Handlers live next to their feature and register themselves with
`@job_handler(...)` when the feature's `init_app` imports its jobs module, so
this module never names a feature. Periodic tasks are registered per app by
`register_periodic` (a feature's `init_app`) and run by RQ's cron scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from irisvue.models import Job

PERIODIC_EXTENSION = "irisvue.periodic"

QUEUE_NAMES: tuple[str, ...] = ("emails", "default", "exports")  # worker priority order

HandlerFn = Callable[["Job"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Handler:
    kind: str
    fn: HandlerFn
    queue: str
    timeout: int


class UnknownJobKindError(LookupError):
    """No handler is registered for this kind."""


class JobError(Exception):
    """A handler failure with a stable code; RQ retries it while retries are left.

    The code (not the message) is what `Job.error` records, so it must never
    carry personal data.
    """

    code = "job_error"

    def __init__(self, code: str | None = None) -> None:
        super().__init__(code or self.code)
        if code:
            self.code = code


class PermanentJobError(JobError):
    """A failure that retrying cannot fix: the job is marked failed at once."""

    code = "job_failed_permanently"


_handlers: dict[str, Handler] = {}


def job_handler(
    kind: str, queue: str = "default", *, timeout: int = 180
) -> Callable[[HandlerFn], HandlerFn]:
    """Register `fn(job) -> dict | None` as the handler of `kind` on `queue`."""
    if queue not in QUEUE_NAMES:
        raise ValueError(f"job {kind!r}: unknown queue {queue!r} (one of {QUEUE_NAMES})")
    if timeout <= 0:
        raise ValueError(f"job {kind!r}: timeout must be positive")

    def register(fn: HandlerFn) -> HandlerFn:
        existing = _handlers.get(kind)
        if existing is not None and existing.fn is not fn:
            # Same module imported twice under two names would be a silent override.
            qualname = f"{existing.fn.__module__}.{existing.fn.__qualname__}"
            if qualname != f"{fn.__module__}.{fn.__qualname__}":
                raise ValueError(f"job kind {kind!r} is already handled by {qualname}")
        _handlers[kind] = Handler(kind=kind, fn=fn, queue=queue, timeout=timeout)
        return fn

    return register


def get_handler(kind: str) -> Handler:
    try:
        return _handlers[kind]
    except KeyError:
        raise UnknownJobKindError(f"no job handler is registered for kind {kind!r}") from None


def registered_kinds() -> list[str]:
    return sorted(_handlers)


@dataclass(frozen=True)
class PeriodicTask:
    """A function RQ's cron scheduler enqueues: every `interval` seconds or on `cron`.

    `fn` takes no argument (nothing to serialise) and pushes its own app context
    (`irisvue.jobs.runner.app_context`).
    """

    name: str
    fn: Callable[[], Any]
    cron: str | None = None
    interval: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def register_periodic(
    app: Flask,
    name: str,
    fn: Callable[[], Any],
    *,
    cron: str | None = None,
    interval: int | None = None,
    **options: Any,
) -> None:
    """Run `fn` periodically in the worker's cron scheduler (RQ job options in `options`)."""
    if (cron is None) == (interval is None):
        raise ValueError(f"periodic task {name!r}: give exactly one of cron or interval")
    tasks: dict[str, PeriodicTask] = app.extensions.setdefault(PERIODIC_EXTENSION, {})
    tasks[name] = PeriodicTask(name=name, fn=fn, cron=cron, interval=interval, options=options)


def periodic_tasks(app: Flask) -> list[PeriodicTask]:
    return list(app.extensions.get(PERIODIC_EXTENSION, {}).values())
