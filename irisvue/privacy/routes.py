"""Privacy rights over HTTP: export (request, signed download) and erasure."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from irisvue.api import NO_STORE, ApiBlueprint, current_user, current_user_id, streamed
from irisvue.auth.identity_schemas import REAUTH_BODY
from irisvue.auth.ratelimit import per_user
from irisvue.auth.reauth_schemas import reauth_arguments
from irisvue.jobs.schemas import JobSchema, job_links
from irisvue.models import Job
from irisvue.privacy import erasure_start, export_services, services
from irisvue.privacy.export_schemas import DOWNLOAD_SCHEMA, ExportDownloadArgsSchema
from irisvue.privacy.schemas import (
    RECEIPT_ID_PARAMETER,
    ErasureAcceptedSchema,
    ErasureRequestSchema,
    ErasureStatusSchema,
)

blp = ApiBlueprint(
    "privacy",
    __name__,
    url_prefix="/api/v1/privacy",
    description="Privacy rights: data export and account erasure.",
)
blp.no_store()

RECEIPT_LINKS = {
    "GetErasure": {
        "operationId": "getErasure",
        "parameters": {"receipt_id": "$response.body#/receipt_id"},
    }
}


@blp.route("/export")
class ExportViews(MethodView):
    @blp.authenticated()
    @blp.doc(
        operationId="requestExport", responses={202: {"links": job_links("$response.body#/id")}}
    )
    @blp.response(202, JobSchema, description="The export job (the pending one, if any)")
    def post(self) -> tuple[Job, int, dict[str, str]]:
        """Request an archive of all your data; follow the job for its download link."""
        return export_services.request_export(current_user_id()), 202, NO_STORE


@blp.route("/export/<uuid:job_id>/download")
class ExportDownloadViews(MethodView):
    @blp.arguments(ExportDownloadArgsSchema, location="query")
    @blp.response(200, DOWNLOAD_SCHEMA, content_type="application/zip", description="The ZIP")
    @blp.problem(
        401,
        "`token_invalid` / `token_expired`: the signed link is bad or too old; "
        "`token_revoked`: signed out everywhere, password changed, biometric consent "
        "withdrawn or account erased since (read the job again for a new link)",
    )
    @blp.problem(404, "No such export, or it was deleted")
    @blp.problem(410, "`content_destroyed`: biometric consent was withdrawn since it was built")
    @blp.problem(503, "`storage_unavailable`: the object store is unavailable")
    @blp.doc(operationId="downloadExport")
    def get(self, args: dict[str, Any], job_id: uuid.UUID) -> Response:
        """The export archive, decrypted and streamed (signed link, no bearer token)."""
        download = export_services.open_download(job_id, args["token"])
        return streamed(download, "application/zip", disposition="attachment", headers=NO_STORE)


@blp.route("/erasure")
class ErasureViews(MethodView):
    @blp.authenticated(
        codes="invalid_credentials, reauthentication_stale, invalid_id_token (re-authentication)"
    )
    # Wrong passwords count against the same per-user budget as a password change.
    @per_user("RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER", "privacy-erasure", failures_only=True)
    @blp.doc(
        operationId="requestErasure",
        responses={202: {"links": RECEIPT_LINKS}},
        requestBody=REAUTH_BODY,
    )
    @blp.arguments(ErasureRequestSchema)
    @blp.response(202, ErasureAcceptedSchema)
    @blp.problems(
        {
            404: "provider_disabled",
            413: "payload_too_large (body over MAX_JSON_KB)",
            422: "validation_error, reauthentication_required",
            429: "rate_limited",
            503: "provider_unavailable",
        }
    )
    def post(self, data: dict[str, str]) -> Any:
        """Erase the account: every session ends now, the data goes in the background."""
        request = erasure_start.request_erasure(current_user, reauth_arguments(data))
        status_url = url_for("privacy.ErasureStatusViews", receipt_id=request.receipt_id)
        return {"receipt_id": request.receipt_id, "status_url": status_url}


@blp.route("/erasure/<string:receipt_id>")
class ErasureStatusViews(MethodView):
    @blp.doc(operationId="getErasure", parameters=[RECEIPT_ID_PARAMETER])
    @blp.response(200, ErasureStatusSchema)
    @blp.problems({404: "erasure_not_found"})
    def get(self, receipt_id: str) -> Any:
        """The state of an erasure, by receipt id (no token: the account is gone)."""
        return services.erasure_status(receipt_id)
