from __future__ import annotations

import uuid

from flask import Response, current_app
from flask.views import MethodView

from irisvue.api import NO_STORE, ApiBlueprint, current_user_id
from irisvue.extensions import db
from irisvue.jobs import events
from irisvue.jobs.schemas import JOB_EVENTS_SCHEMA, JobSchema
from irisvue.jobs.services import get_user_job
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
    def get(self, job_id: uuid.UUID) -> Response:
        """Live progress of a job of the current user, as Server-Sent Events."""
        first = events.job_document(get_user_job(job_id, current_user_id()))
        db.session.remove()  # the stream holds no connection between polls
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return Response(
            events.job_events(app, job_id, first),
            mimetype="text/event-stream",
            headers=events.SSE_HEADERS,
        )
