"""Schemas of the erasure endpoints (the export's live in export_schemas.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from irisvue.api import EnumField
from irisvue.auth.schemas import no_nul
from irisvue.models.privacy import PRIVACY_REQUEST_STATUSES

# Erasure receipt ids are secrets.token_urlsafe(24): 32 base64url characters.
RECEIPT_ID_PARAMETER = {
    "in": "path",
    "name": "receipt_id",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}


class ErasureRequestSchema(Schema):
    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=1, max=1024), no_nul],
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
    status = EnumField("PrivacyRequestStatus", PRIVACY_REQUEST_STATUSES, required=True)
    requested_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(required=True, allow_none=True)
    deleted = fields.Nested(ErasureCountsSchema, required=True)
