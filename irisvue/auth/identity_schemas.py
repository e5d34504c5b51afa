"""Bodies of native sign-in (nonce, ID token), identities and Apple's notifications."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from irisvue.auth.providers.id_tokens import MAX_TOKEN_LENGTH
from irisvue.auth.reauth_schemas import (
    IdTokenField,
    IdTokenProofSchema,
    IdTokenReauthSchema,
    NonceField,
    ProviderField,
    one_of,
)
from irisvue.auth.schemas import RegisteredSchema, no_nul


class NonceSchema(Schema):
    nonce = fields.String(
        required=True,
        metadata={"description": "pass sha256_hex(nonce) to the provider SDK, this one to us"},
    )
    expires_in = fields.Integer(required=True, metadata={"description": "seconds (600)"})


def AuthorizationCodeField() -> fields.String:  # noqa: N802
    return fields.String(
        load_only=True,
        validate=[validate.Length(min=1, max=1024), validate.Regexp(r"^[\x21-\x7e]+$")],
        metadata={"description": "Apple only: exchanged once for Apple's refresh token"},
    )


class IdTokenSignInSchema(Schema):
    provider = ProviderField(required=True)
    id_token = IdTokenField(required=True)
    nonce = NonceField(required=True)
    authorization_code = AuthorizationCodeField()
    name = fields.String(
        load_only=True,
        validate=[validate.Length(max=256), no_nul],
        metadata={"description": "accepted for SDK compatibility; not stored"},
    )


class SignedInSchema(RegisteredSchema):
    created = fields.Boolean(required=True, metadata={"description": "true on first sign-in"})


class LinkIdentitySchema(Schema):
    provider = ProviderField(required=True)
    id_token = IdTokenField(required=True)
    nonce = NonceField(required=True)
    authorization_code = AuthorizationCodeField()


class IdentitySchema(Schema):
    id = fields.UUID(required=True, dump_only=True)
    provider = ProviderField(required=True, dump_only=True)
    email = fields.String(required=True, dump_only=True, allow_none=True)
    is_private_email = fields.Boolean(required=True, dump_only=True)
    created_at = fields.DateTime(required=True, dump_only=True)
    last_sign_in_at = fields.DateTime(required=True, dump_only=True, allow_none=True)


class IdentityListSchema(Schema):
    items = fields.List(fields.Nested(IdentitySchema), required=True)


def _password(**kwargs: object) -> fields.String:
    return fields.String(
        load_only=True,
        validate=[validate.Length(min=1, max=1024), no_nul],
        metadata={"description": "the account's password"},
        **kwargs,
    )


class ReauthSchema(IdTokenReauthSchema):
    """`{password}` or `{provider, id_token, nonce}` (re-authentication)."""

    password = _password()


class PasswordProofSchema(Schema):
    """Re-authentication by the account's password."""

    password = _password(required=True)


# What ReauthSchema accepts, as the OpenAPI document states it.
REAUTH_BODY = one_of(PasswordProofSchema, IdTokenProofSchema)


class AppleNotificationSchema(Schema):
    payload = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH),
        metadata={"description": "a JWT signed by Apple"},
    )


class NotificationAckSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["handled", "ignored", "duplicate"]})
