from __future__ import annotations

import uuid
from typing import Any

from flask import Response, request
from flask.views import MethodView

from irisvue.api import ApiBlueprint, current_user_id, streamed
from irisvue.captures import services
from irisvue.captures.schemas import (
    IMAGE_SCHEMA,
    UPLOAD_REQUEST_BODY,
    CapturePageSchema,
    CaptureQueryArgsSchema,
    CaptureSchema,
)
from irisvue.captures.upload import UploadRequest
from irisvue.models import Capture

blp = ApiBlueprint(
    "captures",
    __name__,
    url_prefix="/api/v1/captures",
    description="Iris photographs: consent-gated, metadata-stripped, encrypted uploads.",
)
blp.no_store()  # biometric data and its metadata
_BY_NEW_ID = {"capture_id": "$response.body#/id"}
# OpenAPI links: what a client (or a stateful fuzzer) can do with an answer.
CREATED_LINKS = {
    "GetCapture": {"operationId": "getCapture", "parameters": _BY_NEW_ID},
    "GetCaptureContent": {"operationId": "getCaptureContent", "parameters": _BY_NEW_ID},
    "DeleteCapture": {"operationId": "deleteCapture", "parameters": _BY_NEW_ID},
}
DELETED_LINKS = {
    "GetDeletedCapture": {
        "operationId": "getCapture",
        "parameters": {"capture_id": "$request.path.capture_id"},
        "description": "404 from now on",
    }
}


@blp.route("/")
class CaptureViews(MethodView):
    accepts_multipart = True  # see guards.init_request_guards

    @blp.authenticated()
    @blp.arguments(CaptureQueryArgsSchema, location="query")
    @blp.response(200, CapturePageSchema)
    @blp.problem(422, "Invalid limit or cursor")
    @blp.doc(operationId="listCaptures")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The user's captures, newest first, paginated."""
        items, next_cursor = services.list_captures(
            current_user_id(), limit=args["limit"], after=args.get("cursor")
        )
        return {"items": items, "next_cursor": next_cursor}

    @blp.authenticated()
    @blp.doc(operationId="uploadCapture", requestBody=UPLOAD_REQUEST_BODY)
    @blp.doc(responses={201: {"links": CREATED_LINKS}})
    @blp.response(201, CaptureSchema, description="The stored capture")
    @blp.problem(400, "`invalid_multipart`: the multipart body is malformed")
    @blp.problem(
        403,
        "`consent_required`: no live biometric_capture consent; "
        "`email_unverified`: the email address is not verified",
    )
    @blp.problem(409, "`upload_conflict`: the user's data key changed during the upload")
    @blp.problem(413, "`payload_too_large`: the file exceeds MAX_UPLOAD_MB (20 MB by default)")
    @blp.problem(415, "`unsupported_media_type`: not multipart, or the file is not JPEG or PNG")
    @blp.problem(422, "`validation_error`: no `file` part; `invalid_image`: a broken JPEG/PNG")
    @blp.problem(503, "`storage_unavailable`: the object store is unavailable; nothing was stored")
    def post(self) -> Capture:
        """Upload an iris photo (multipart `file`, JPEG or PNG): stripped, encrypted, stored."""
        upload = UploadRequest(
            content_type=request.headers.get("Content-Type"),
            content_length=request.content_length,
            open_stream=lambda: request.stream,  # opened after the consent and email checks
        )
        return services.create_capture(current_user_id(), upload)


@blp.route("/<uuid:capture_id>")
class CaptureByIdViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="getCapture")
    @blp.response(200, CaptureSchema)
    @blp.problem(404, "No such capture of this user")
    def get(self, capture_id: uuid.UUID) -> Capture:
        """A capture's metadata."""
        return services.get_capture(current_user_id(), capture_id)

    @blp.authenticated()
    @blp.doc(operationId="deleteCapture", responses={204: {"links": DELETED_LINKS}})
    @blp.response(204, description="Object and row deleted")
    @blp.problem(404, "No such capture of this user")
    @blp.problem(503, "`storage_unavailable`: the object store is unavailable; nothing was deleted")
    def delete(self, capture_id: uuid.UUID) -> None:
        """Delete a capture: its encrypted object, then its row."""
        services.delete_capture(current_user_id(), capture_id)


@blp.route("/<uuid:capture_id>/content")
class CaptureContentViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="getCaptureContent")
    @blp.response(200, IMAGE_SCHEMA, content_type="image/jpeg", description="The photo")
    @blp.alt_response(
        200, schema=IMAGE_SCHEMA, content_type="image/png", description="The photo", success=True
    )
    @blp.problem(404, "No such capture of this user")
    @blp.problem(410, "`content_destroyed`: the data key or object was destroyed")
    @blp.problem(500, "`integrity_error`: the stored object failed authentication")
    @blp.problem(503, "`storage_unavailable`: the object store is unavailable")
    def get(self, capture_id: uuid.UUID) -> Response:
        """The decrypted photo, streamed."""
        content = services.open_content(current_user_id(), capture_id)
        return streamed(content, content.content_type)
