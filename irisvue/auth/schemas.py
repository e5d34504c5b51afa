"""Request and response bodies of the auth blueprint.

Unknown fields are refused (marshmallow's RAISE → 422), so a client can never
set `id`, `is_verified` or `is_active`. Passwords are taken byte-exact: no
trimming, no Unicode normalisation.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from marshmallow import Schema, ValidationError, fields, validate

from irisvue.auth.passwords import MAX_LENGTH, MIN_LENGTH

EMAIL_MAX_LENGTH = 254


def normalize_email(value: str) -> str:
    """Trimmed, syntax-checked (no DNS), lower-cased; ValueError when invalid."""
    candidate = value.strip()
    if not candidate or len(candidate) > EMAIL_MAX_LENGTH:
        raise ValueError("Not a valid email address.")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except (EmailNotValidError, UnicodeError) as exc:
        raise ValueError("Not a valid email address.") from exc
    return checked.normalized.lower()


class EmailField(fields.String):
    """An email address, normalised on load."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_email(raw)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


def _encodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON "\ud800"
        raise ValidationError("The password is not valid Unicode text.") from exc


def PasswordField(**kwargs) -> fields.String:  # type: ignore[no-untyped-def]  # noqa: N802
    return fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=MIN_LENGTH, max=MAX_LENGTH), _encodable],
        metadata={"description": f"{MIN_LENGTH}..{MAX_LENGTH} characters, not a common password"},
        **kwargs,
    )


class CredentialsSchema(Schema):
    email = EmailField(required=True, metadata={"example": "ada@example.com"})
    password = PasswordField()


class LoginSchema(Schema):
    email = EmailField(required=True)
    # Any length: a wrong password is a 401 like any other, not a hint.
    password = fields.String(
        required=True, load_only=True, validate=[validate.Length(max=1024), _encodable]
    )


class UserSchema(Schema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    is_verified = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    auth_provider = fields.String(dump_only=True)


class MePatchSchema(Schema):
    email = EmailField(required=True, metadata={"description": "the new address; re-verified"})
    current_password = fields.String(required=True, load_only=True)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "access token lifetime in seconds"}
    )


class RegisteredSchema(TokenPairSchema):
    user = fields.Nested(UserSchema, required=True)


class SessionSchema(Schema):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True)
    expires_at = fields.DateTime(dump_only=True)
    ip_address = fields.String(dump_only=True, allow_none=True)
    user_agent = fields.String(dump_only=True, allow_none=True)
    current = fields.Boolean(dump_only=True, metadata={"description": "the calling session"})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class SessionQueryArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True)
    new_password = PasswordField()


class EmailTokenSchema(Schema):
    token = fields.String(required=True, load_only=True, validate=validate.Length(max=128))


class PasswordResetRequestSchema(Schema):
    email = EmailField(required=True)


class PasswordResetSchema(Schema):
    token = fields.String(required=True, load_only=True, validate=validate.Length(max=128))
    new_password = PasswordField()


class AcceptedSchema(Schema):
    status = fields.String(required=True, metadata={"example": "accepted"})
    detail = fields.String(required=True)
