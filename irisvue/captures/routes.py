from __future__ import annotations

import uuid
from typing import Any

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity, jwt_required

from irisvue.captures import blp, services
from irisvue.captures.schemas import (
    IMAGE_SCHEMA,
    UPLOAD_REQUEST_BODY,
    CapturePageSchema,
    CaptureQueryArgsSchema,
    CaptureSchema,
)
from irisvue.captures.upload import UploadRequest
from irisvue.errors import PROBLEM_MIMETYPE, ProblemSchema
from irisvue.models import Capture

BEARER = [{"bearerAuth": []}]
_BY_NEW_ID = {"item_id": "$response.body#/id"}
# OpenAPI links: what a client (or a stateful fuzzer) can do with an answer.
CREATED_LINKS = {
    "GetCapture": {"operationId": "getCapture", "parameters": _BY_NEW_ID},
    "GetCaptureContent": {"operationId": "getCaptureContent", "parameters": _BY_NEW_ID},
    "DeleteCapture": {"operationId": "deleteCapture", "parameters": _BY_NEW_ID},
}
DELETED_LINKS = {
    "GetDeletedCapture": {
        "operationId": "getCapture",
        "parameters": {"item_id": "$request.path.item_id"},
        "description": "404 from now on",
    }
}


def _problem(status: int, description: str) -> Any:
    return blp.alt_response(
        status, schema=ProblemSchema, content_type=PROBLEM_MIMETYPE, description=description
    )


@blp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # biometric data and its metadata
    return response


@blp.route("/")
class CaptureViews(MethodView):
    decorators = [jwt_required()]
    accepts_multipart = True  # see guards.init_request_guards

    @blp.arguments(CaptureQueryArgsSchema, location="query")
    @blp.doc(security=BEARER)
    @blp.response(200, CapturePageSchema)
    @_problem(401, "Missing, invalid or expired access token")
    @_problem(422, "Invalid limit or cursor")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The user's captures, newest first, paginated."""
        items, next_cursor = services.list_captures(
            get_jwt_identity(), limit=args["limit"], after=args.get("cursor")
        )
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(requestBody=UPLOAD_REQUEST_BODY)
    @blp.doc(security=BEARER, responses={201: {"links": CREATED_LINKS}})
    @blp.response(201, CaptureSchema, description="The stored capture")
    @_problem(400, "`invalid_multipart`: the multipart body is malformed")
    @_problem(401, "Missing, invalid or expired access token")
    @_problem(
        403,
        "`consent_required`: no live biometric_capture consent; "
        "`email_unverified`: the email address is not verified",
    )
    @_problem(409, "`upload_conflict`: the user's data key changed during the upload")
    @_problem(413, "`payload_too_large`: the file exceeds MAX_UPLOAD_MB (20 MB by default)")
    @_problem(415, "`unsupported_media_type`: not multipart, or the file is not JPEG or PNG")
    @_problem(422, "`validation_error`: no `file` part; `invalid_image`: a broken JPEG/PNG")
    @_problem(503, "`storage_unavailable`: the object store is unavailable; nothing was stored")
    def post(self) -> Capture:
        """Upload an iris photo (multipart `file`, JPEG or PNG): stripped, encrypted, stored."""
        upload = UploadRequest(
            content_type=request.headers.get("Content-Type"),
            content_length=request.content_length,
            open_stream=lambda: request.stream,  # opened after the consent and email checks
        )
        return services.create_capture(get_jwt_identity(), upload)


@blp.route("/<uuid:item_id>")
class CaptureByIdViews(MethodView):
    decorators = [jwt_required()]

    @blp.doc(security=BEARER, operationId="getCapture")
    @blp.response(200, CaptureSchema)
    @_problem(401, "Missing, invalid or expired access token")
    @_problem(404, "No such capture of this user")
    def get(self, item_id: uuid.UUID) -> Capture:
        """A capture's metadata."""
        return services.get_capture(get_jwt_identity(), item_id)

    @blp.doc(
        security=BEARER, operationId="deleteCapture", responses={204: {"links": DELETED_LINKS}}
    )
    @blp.response(204, description="Object and row deleted")
    @_problem(401, "Missing, invalid or expired access token")
    @_problem(404, "No such capture of this user")
    @_problem(503, "`storage_unavailable`: the object store is unavailable; nothing was deleted")
    def delete(self, item_id: uuid.UUID) -> None:
        """Delete a capture: its encrypted object, then its row."""
        services.delete_capture(get_jwt_identity(), item_id)


@blp.route("/<uuid:item_id>/content")
class CaptureContentViews(MethodView):
    decorators = [jwt_required()]

    @blp.doc(security=BEARER, operationId="getCaptureContent")
    @blp.response(200, IMAGE_SCHEMA, content_type="image/jpeg", description="The photo")
    @blp.alt_response(
        200, schema=IMAGE_SCHEMA, content_type="image/png", description="The photo", success=True
    )
    @_problem(401, "Missing, invalid or expired access token")
    @_problem(404, "No such capture of this user")
    @_problem(410, "`content_destroyed`: the data key or object was destroyed")
    @_problem(500, "`integrity_error`: the stored object failed authentication")
    @_problem(503, "`storage_unavailable`: the object store is unavailable")
    def get(self, item_id: uuid.UUID) -> Response:
        """The decrypted photo, streamed."""
        content = services.open_content(get_jwt_identity(), item_id)
        response = Response(
            stream_with_context(iter(content)),
            status=200,
            mimetype=content.content_type,
            headers={
                "Content-Length": str(content.size),
                "Content-Disposition": f'inline; filename="{content.filename}"',
                "X-Content-Type-Options": "nosniff",
            },
        )
        # Also when the body is never iterated (client gone before the first byte).
        response.call_on_close(content.close)
        return response
