from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from marshmallow import Schema, ValidationError, fields, validate

from irisvue.api import EnumField
from irisvue.captures.services import decode_cursor
from irisvue.models.capture import CAPTURE_CONTENT_TYPES
from irisvue.pagination import KEYSET_DOC

MAX_PAGE = 100


class Cursor(fields.String):
    """A `next_cursor` from a previous page; loads as (created_at, id).

    Documented with the pattern the server checks (irisvue.pagination): any
    value it admits is a valid position, anything else is a 422.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[datetime, UUID]:
        try:
            return decode_cursor(super()._deserialize(value, attr, data, **kwargs))
        except ValueError:
            raise ValidationError("Not a cursor returned by this endpoint.") from None


class CaptureSchema(Schema):
    id = fields.UUID(required=True)
    content_type = EnumField(
        "CaptureContentType",
        CAPTURE_CONTENT_TYPES,
        required=True,
        metadata={"description": "recognised from the bytes, not from the declared type"},
    )
    size = fields.Integer(
        required=True, metadata={"description": "bytes of the stored image (metadata stripped)"}
    )
    sha256 = fields.String(
        required=True, metadata={"description": "hex SHA-256 of the stored image"}
    )
    created_at = fields.DateTime(required=True)


class DestructionResultSchema(Schema):
    """The result of a `biometrics.destroy` job (a withdrawal or refusal of biometric consent)."""

    captures = fields.Integer(required=True, metadata={"description": "capture rows deleted"})
    objects = fields.Integer(required=True, metadata={"description": "stored objects deleted"})


class CaptureQueryArgsSchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = Cursor(metadata=KEYSET_DOC)


class CapturePageSchema(Schema):
    items = fields.List(fields.Nested(CaptureSchema), required=True)
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata={**KEYSET_DOC, "description": "null on the last page"},
    )


UPLOAD_REQUEST_BODY = {
    "required": True,
    "description": "The photo as the `file` part, the only part. Its bytes decide the type "
    "(JPEG or PNG); "
    "EXIF, XMP, GPS, IPTC and comments are removed without re-encoding the pixels.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
                "additionalProperties": False,  # any other part is a 422 (upload.file_part)
            },
            "encoding": {"file": {"contentType": "image/jpeg, image/png"}},
        }
    },
}

IMAGE_SCHEMA = {"type": "string", "format": "binary"}
