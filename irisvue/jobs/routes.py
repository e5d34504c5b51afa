from __future__ import annotations

from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity, jwt_required

from irisvue.jobs import blp
from irisvue.jobs.schemas import JobSchema
from irisvue.jobs.services import get_user_job
from irisvue.models import Job

NO_STORE = {"Cache-Control": "no-store"}


@blp.route("/<uuid:item_id>")
class JobByIdViews(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, JobSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, item_id) -> tuple[Job, int, dict[str, str]]:
        """A background job of the current user: status, progress, result."""
        return get_user_job(item_id, get_jwt_identity()), 200, NO_STORE
