"""Job kinds → handler functions.

A handler is `fn(job: Job) -> dict | None`; its return value is stored in
`Job.result`. Handlers live next to their feature and register themselves with
`@job_handler(...)`; the modules that hold them are listed in HANDLER_MODULES
and imported on first use, so importing this module never drags a feature in.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from irisvue.models import Job

# Every module that defines handlers. A missing module is a deploy error, not a
# silent "unknown kind" at run time: load_handlers() names it.
HANDLER_MODULES: tuple[str, ...] = (
    "irisvue.mail",
    "irisvue.consent.jobs",
    "irisvue.auth.jobs",
    "irisvue.privacy.export_jobs",
    "irisvue.privacy.jobs",
)

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


class HandlerModuleError(ImportError):
    """A module listed in HANDLER_MODULES cannot be imported."""


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
_loaded = False
_load_lock = threading.Lock()


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


def load_handlers() -> None:
    """Import every module of HANDLER_MODULES once (their decorators register)."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for path in HANDLER_MODULES:
            try:
                importlib.import_module(path)
            except ModuleNotFoundError as exc:
                if exc.name != path and not path.startswith(f"{exc.name}."):
                    raise  # the module exists but one of its own imports is missing
                raise HandlerModuleError(
                    f"irisvue.jobs.registry.HANDLER_MODULES lists {path!r}, "
                    "which cannot be imported"
                ) from exc
        _loaded = True


def get_handler(kind: str) -> Handler:
    load_handlers()
    try:
        return _handlers[kind]
    except KeyError:
        raise UnknownJobKindError(f"no job handler is registered for kind {kind!r}") from None


def registered_kinds() -> list[str]:
    load_handlers()
    return sorted(_handlers)
