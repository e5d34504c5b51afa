"""Schemas of the erasure endpoints (the export's live in export_schemas.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from irisvue.models.privacy import PRIVACY_REQUEST_STATUSES


class ErasureRequestSchema(Schema):
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=1024),
        metadata={"description": "the account's current password (re-authentication)"},
    )


class ErasureAcceptedSchema(Schema):
    receipt_id = fields.String(
        required=True,
        metadata={"description": "unguessable id of the public status page; keep it"},
    )
    status_url = fields.String(required=True, metadata={"example": "/api/v1/privacy/erasure/…"})


class ErasureCountsSchema(Schema):
    captures = fields.Integer(required=True)
    consents = fields.Integer(required=True)
    sessions = fields.Integer(required=True)
    objects = fields.Integer(required=True)


class ErasureStatusSchema(Schema):
    status = fields.String(
        required=True, metadata={"enum": list(PRIVACY_REQUEST_STATUSES), "example": "completed"}
    )
    requested_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(allow_none=True)
    deleted = fields.Nested(ErasureCountsSchema, required=True)
