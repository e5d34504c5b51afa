"""Export endpoints: request an export, download it through its signed link."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity, jwt_required

from irisvue.errors import PROBLEM_MIMETYPE, ProblemSchema
from irisvue.jobs.schemas import JobSchema, job_links
from irisvue.models import Job
from irisvue.privacy import blp, export_services
from irisvue.privacy.export_schemas import DOWNLOAD_SCHEMA, ExportDownloadArgsSchema

BEARER = [{"bearerAuth": []}]
NO_STORE = {"Cache-Control": "no-store"}


def _problem(status: int, description: str) -> Any:
    return blp.alt_response(
        status, schema=ProblemSchema, content_type=PROBLEM_MIMETYPE, description=description
    )


@blp.route("/export")
class ExportViews(MethodView):
    decorators = [jwt_required()]

    @blp.doc(security=BEARER, responses={202: {"links": job_links("$response.body#/id")}})
    @blp.response(202, JobSchema, description="The export job (the pending one, if any)")
    @_problem(401, "Missing, invalid or expired access token")
    def post(self) -> tuple[Job, int, dict[str, str]]:
        """Request an archive of all your data; follow the job for its download link."""
        return export_services.request_export(get_jwt_identity()), 202, NO_STORE


@blp.route("/export/<uuid:job_id>/download")
class ExportDownloadViews(MethodView):
    @blp.arguments(ExportDownloadArgsSchema, location="query")
    @blp.response(200, DOWNLOAD_SCHEMA, content_type="application/zip", description="The ZIP")
    @_problem(401, "`token_invalid` / `token_expired`: the signed link is bad or too old")
    @_problem(404, "No such export, or it was deleted")
    @_problem(503, "`storage_unavailable`: the object store is unavailable")
    def get(self, args: dict[str, Any], job_id: uuid.UUID) -> Response:
        """The export archive, decrypted and streamed (signed link, no bearer token)."""
        download = export_services.open_download(job_id, args["token"])
        response = Response(
            stream_with_context(iter(download)),
            status=200,
            mimetype="application/zip",
            headers={
                "Content-Length": str(download.size),
                "Content-Disposition": f'attachment; filename="{download.filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
        response.call_on_close(download.close)
        return response
