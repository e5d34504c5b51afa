from __future__ import annotations

import uuid

from flask import Response, current_app, request
from flask.views import MethodView

from irisvue.api import NO_STORE, ApiBlueprint, current_user_id
from irisvue.extensions import db
from irisvue.jobs import events
from irisvue.jobs.schemas import JOB_EVENTS_SCHEMA, JobSchema
from irisvue.jobs.services import get_user_job
from irisvue.jobs.streams import stream_limits
from irisvue.models import Job

blp = ApiBlueprint(
    "jobs", __name__, url_prefix="/api/v1/jobs", description="Background job status (owner only)."
)


@blp.route("/<uuid:job_id>")
class JobByIdViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="getJob")
    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, job_id: uuid.UUID) -> tuple[Job, int, dict[str, str]]:
        """A background job of the current user: status, progress, result."""
        return get_user_job(job_id, current_user_id()), 200, NO_STORE


@blp.route("/<uuid:job_id>/events")
class JobEventsViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="getJobEvents")
    @blp.response(
        200,
        JOB_EVENTS_SCHEMA,
        content_type="text/event-stream",
        description="`event: job` with the job object on every change, until it ends; "
        "`: keep-alive` comments in between",
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.problems(
        {
            429: "too_many_streams (this user has SSE_MAX_STREAMS_PER_USER streams open)",
            503: "busy (this server's share of threads for streams is taken)",
        },
        retry_after=True,
    )
    def get(self, job_id: uuid.UUID) -> Response:
        """Live progress of a job of the current user, as Server-Sent Events.

        Streams are bounded: a few per user, and at most half of a server
        process's threads. The stream ends at the first poll after its token
        is revoked (logout, password change...)."""
        user_id = current_user_id()
        first = events.job_document(get_user_job(job_id, user_id))
        db.session.remove()  # the stream holds no connection between polls
        slot = stream_limits().acquire(user_id)  # 429 / 503
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        stream = events.job_events(
            app, job_id, first, authorization=request.headers["Authorization"], slot=slot
        )
        response = Response(stream, mimetype="text/event-stream", headers=events.SSE_HEADERS)
        response.call_on_close(slot.release)  # also when the body is never iterated
        return response
