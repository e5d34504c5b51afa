"""Account erasure: request it (re-authenticated), then follow it by receipt id."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_jwt_extended import current_user, jwt_required

from irisvue.auth.ratelimit import per_user
from irisvue.errors import PROBLEM_MIMETYPE, ProblemSchema
from irisvue.privacy import blp, services
from irisvue.privacy.schemas import (
    RECEIPT_ID_PARAMETER,
    ErasureAcceptedSchema,
    ErasureRequestSchema,
    ErasureStatusSchema,
)

BEARER = [{"bearerAuth": []}]
RECEIPT_LINKS = {
    "GetErasure": {
        "operationId": "getErasure",
        "parameters": {"receipt_id": "$response.body#/receipt_id"},
    }
}
BEARER_CODES = "token_missing, token_invalid, token_expired, token_revoked, account_disabled"


def _problem(status: int, description: str) -> Any:
    return blp.alt_response(
        status, schema=ProblemSchema, content_type=PROBLEM_MIMETYPE, description=description
    )


@blp.route("/erasure")
class ErasureViews(MethodView):
    decorators = [jwt_required()]

    # Wrong passwords count against the same per-user budget as a password change.
    @per_user("RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER", "privacy-erasure", failures_only=True)
    @blp.doc(security=BEARER, responses={202: {"links": RECEIPT_LINKS}})
    @blp.arguments(ErasureRequestSchema)
    @blp.response(202, ErasureAcceptedSchema)
    @_problem(401, f"`code`: invalid_credentials, {BEARER_CODES}")
    @_problem(429, "`code`: rate_limited")
    def post(self, data: dict[str, str]) -> Any:
        """Erase the account: every session ends now, the data goes in the background."""
        request = services.request_erasure(current_user, data["password"])
        status_url = url_for("privacy.ErasureStatusViews", receipt_id=request.receipt_id)
        return {"receipt_id": request.receipt_id, "status_url": status_url}


@blp.route("/erasure/<string:receipt_id>")
class ErasureStatusViews(MethodView):
    @blp.doc(operationId="getErasure", parameters=[RECEIPT_ID_PARAMETER])
    @blp.response(200, ErasureStatusSchema)
    @_problem(404, "`code`: erasure_not_found")
    def get(self, receipt_id: str) -> Any:
        """The state of an erasure, by receipt id (no token: the account is gone)."""
        return services.erasure_status(receipt_id)


@blp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response
