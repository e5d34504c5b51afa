"""Schemas of the erasure endpoints (the export's live in export_schemas.py)."""

from __future__ import annotations

from marshmallow import Schema, fields

from irisvue.api import EnumField
from irisvue.auth.identity_schemas import ReauthSchema
from irisvue.models.privacy import PRIVACY_REQUEST_STATUSES

# Erasure receipt ids are secrets.token_urlsafe(24): 32 base64url characters.
RECEIPT_ID_PARAMETER = {
    "in": "path",
    "name": "receipt_id",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}


class ErasureRequestSchema(ReauthSchema):
    """`{password}`, or `{provider, id_token, nonce}` of a linked identity issued within
    5 minutes (how an account without a password erases itself)."""


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
    apple_revoked = fields.Boolean(
        required=True,
        allow_none=True,
        metadata={
            "description": "whether Apple confirmed revoking the user's Sign in with Apple "
            "tokens; null when there was no Apple identity (or not attempted yet)"
        },
    )
