"""Server-Sent Events of one job: its JSON (as GET /jobs/{id}) on every change until it ends.

The stream polls the database, each poll in a request context of its own (a
fresh session and a connection held only for the queries), so a stream keeps
one gthread thread and no connection. It ends when the job is finished or
failed, after SSE_MAX_STREAM_SECONDS (a stuck job must not hold a thread for
ever; EventSource reconnects by itself), when the client goes away (the
server closes the generator: GeneratorExit at the pending `yield`), or at the
first poll after its token stops being accepted.

Every poll re-checks the bearer token the stream was opened with, exactly as
a protected endpoint does (`verify_jwt_in_request`: signature, expiry, the
auth feature's blocklist loader — revoked or expired session — and its user
loader), after reading the job and before sending anything: once a session is
revoked (logout, logout-all, password change, erasure...) the stream sends
nothing more, not even the job's result, and closes within one poll.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import structlog
from flask import Flask
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError

from irisvue.extensions import db
from irisvue.jobs.schemas import JobSchema
from irisvue.jobs.streams import StreamSlot
from irisvue.models import Job
from irisvue.models.job import JOB_FINAL_STATUSES

log = structlog.get_logger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}
HEARTBEAT = ": keep-alive\n\n"


def job_document(job: Job) -> dict[str, Any]:
    return JobSchema().dump(job)


def format_event(seq: int, document: dict[str, Any], event: str = "job") -> str:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(document, separators=(',', ':'))}\n\n"


class _RevokedError(Exception):
    """The stream's token is no longer accepted."""


def _poll(app: Flask, job_id: uuid.UUID, authorization: str) -> dict[str, Any] | None:
    """The job's document, read before the token is re-checked (so nothing read
    before a revocation is sent after it); raises _RevokedError."""
    with app.test_request_context(headers={"Authorization": authorization}):
        job = db.session.get(Job, job_id)
        document = job_document(job) if job is not None else None
        try:
            verify_jwt_in_request()
        except (JWTExtendedException, PyJWTError) as exc:
            raise _RevokedError(type(exc).__name__) from None
        return document


def job_events(
    app: Flask,
    job_id: uuid.UUID,
    first: dict[str, Any],
    *,
    authorization: str,
    slot: StreamSlot,
) -> Iterator[str]:
    """The event stream of a job whose owner was checked; `first` is its current document.

    `authorization` is the request's Authorization header, re-checked at every
    poll; `slot` (the stream's place in the limits) is refreshed at every
    heartbeat and released when the stream ends.
    """
    config = app.config
    heartbeat = float(config["SSE_HEARTBEAT_SECONDS"])
    max_seconds = float(config["SSE_MAX_STREAM_SECONDS"])
    poll = float(config["SSE_POLL_SECONDS"])
    started = last_sent = last_lease = time.monotonic()
    seq, document = 1, first
    reason = "client_gone"
    try:
        yield "retry: 2000\n\n" + format_event(seq, document)
        while document["status"] not in JOB_FINAL_STATUSES:
            now = time.monotonic()
            if now - last_lease >= heartbeat:
                last_lease = now
                slot.refresh()
            if now - started >= max_seconds:
                reason = "max_duration"
                yield format_event(seq + 1, {"reason": "max_duration"}, event="timeout")
                return
            time.sleep(max(0.0, min(poll, started + max_seconds - now)))
            try:
                current = _poll(app, job_id, authorization)
            except _RevokedError:
                reason = "session_revoked"
                return
            if current is None:  # erased with its user meanwhile
                reason = "job_gone"
                return
            if current != document:
                seq, document = seq + 1, current
                last_sent = time.monotonic()
                yield format_event(seq, document)
            elif time.monotonic() - last_sent >= heartbeat:
                last_sent = time.monotonic()
                yield HEARTBEAT
        reason = "job_ended"
    finally:
        slot.release()
        log.info("job_events_closed", job_id=str(job_id), reason=reason, events=seq)
