"""Request and response bodies of the auth blueprint.

Unknown fields are refused (marshmallow's RAISE → 422), so a client can never
set `id`, `is_verified` or `is_active`. Passwords are taken byte-exact: no
trimming, no Unicode normalisation (NUL is refused, as in every JSON string).
Every constraint is in the OpenAPI document as a pattern or length, so what
the document admits is accepted (checked by tests/contract).
"""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from marshmallow import Schema, ValidationError, fields, validate

from irisvue.auth.passwords import MAX_LENGTH, MIN_LENGTH
from irisvue.auth.reauth_schemas import IdTokenProofSchema, IdTokenReauthSchema, one_of
from irisvue.pagination import KEYSET_DOC

EMAIL_MAX_LENGTH = 254

# The addresses we accept, as a `pattern` the OpenAPI document publishes and
# the server applies as written: an ASCII dot-atom local part of at most 64
# characters, then a domain of LDH labels (at most 63 characters, no leading,
# trailing or doubled hyphen) ending in an alphabetic top-level domain that is
# not a special-use name (RFC 6761: test, local, ...); spaces, tabs and line
# breaks around the address are trimmed. Every address it admits also passes
# email-validator (the pattern is the stricter of the two), so the document
# and the server agree: what the schema admits is accepted, the rest is 422.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_WS = r"[ \t\r\n]*"
_SPECIAL_USE = "|".join(
    "".join(f"[{c.upper()}{c}]" for c in name)
    for name in ("arpa", "invalid", "localhost", "local", "onion", "test")
)
EMAIL_PATTERN = (
    rf"^{_WS}(?![^@]{{65}}){_ATEXT}+(?:\.{_ATEXT}+)*@"
    rf"(?:(?![A-Za-z0-9-]{{64}})[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)+"
    rf"(?!(?:{_SPECIAL_USE}){_WS}$)[A-Za-z]{{2,63}}{_WS}$"
)
_EMAIL = re.compile(EMAIL_PATTERN)
# Not marshmallow's "Not a valid email address.": the rule is this pattern, not
# RFC 5322 (which admits quoted strings and address literals we refuse).
EMAIL_ERROR = "Not an email address this service accepts (see the documented pattern)."


def normalize_email(value: str) -> str:
    """Trimmed, checked against EMAIL_PATTERN (no DNS), lower-cased; ValueError when invalid."""
    # fullmatch: Python's `$` alone would also let a trailing newline through.
    if len(value) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(value):
        raise ValueError(EMAIL_ERROR)
    try:
        checked = validate_email(value.strip(" \t\r\n"), check_deliverability=False)
    except (EmailNotValidError, UnicodeError) as exc:  # not expected: the pattern is stricter
        raise ValueError(EMAIL_ERROR) from exc
    return checked.normalized.lower()


class EmailField(fields.String):
    """An email address, normalised on load; documented with its pattern and length."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "pattern": EMAIL_PATTERN,
            "maxLength": EMAIL_MAX_LENGTH,
            "example": "ada@example.com",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_email(raw)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


# Any text but NUL, which the request guard refuses in every JSON string
# (PostgreSQL cannot store it); documented so the schema says what is accepted.
NO_NUL_PATTERN = r"^[^\x00]*$"
no_nul = validate.Regexp(NO_NUL_PATTERN, error="Text may not contain NUL characters.")
# Email tokens are secrets.token_urlsafe() output: base64url characters only.
EMAIL_TOKEN = [validate.Length(max=128), validate.Regexp(r"^[A-Za-z0-9_-]+$")]


def _encodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON "\ud800"
        raise ValidationError("The password is not valid Unicode text.") from exc


def PasswordField(**kwargs) -> fields.String:  # type: ignore[no-untyped-def]  # noqa: N802
    return fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=MIN_LENGTH, max=MAX_LENGTH), no_nul, _encodable],
        metadata={"description": f"{MIN_LENGTH}..{MAX_LENGTH} characters, not a common password"},
        **kwargs,
    )


class CredentialsSchema(Schema):
    email = EmailField(required=True)
    password = PasswordField()


class LoginSchema(Schema):
    email = EmailField(required=True)
    # Any length: a wrong password is a 401 like any other, not a hint.
    password = fields.String(
        required=True, load_only=True, validate=[validate.Length(max=1024), no_nul, _encodable]
    )


class UserSchema(Schema):
    id = fields.UUID(dump_only=True, required=True)
    email = fields.String(dump_only=True, required=True)
    is_verified = fields.Boolean(dump_only=True, required=True)
    created_at = fields.DateTime(dump_only=True, required=True)
    auth_provider = fields.String(dump_only=True, required=True, metadata={"example": "password"})


class MePatchSchema(IdTokenReauthSchema):
    """Re-authenticated by `current_password` or by a linked identity's fresh ID token."""

    PASSWORD_FIELD = "current_password"  # noqa: S105 - a field name
    email = EmailField(required=True, metadata={"description": "the new address; re-verified"})
    current_password = fields.String(load_only=True, validate=no_nul)


class MePatchByPasswordSchema(Schema):
    email = EmailField(required=True, metadata={"description": "the new address; re-verified"})
    current_password = fields.String(required=True, load_only=True, validate=no_nul)


class MePatchByIdTokenSchema(IdTokenProofSchema):
    email = EmailField(required=True, metadata={"description": "the new address; re-verified"})


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
    id = fields.UUID(dump_only=True, required=True)
    created_at = fields.DateTime(dump_only=True, required=True)
    last_used_at = fields.DateTime(dump_only=True, required=True)
    expires_at = fields.DateTime(dump_only=True, required=True)
    ip_address = fields.String(dump_only=True, required=True, allow_none=True)
    user_agent = fields.String(dump_only=True, required=True, allow_none=True)
    current = fields.Boolean(
        dump_only=True, required=True, metadata={"description": "the calling session"}
    )


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema), required=True)
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata={**KEYSET_DOC, "description": "null on the last page"},
    )


class SessionQueryArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    # Checked by the service (422 `invalid_cursor`); documented with the same pattern.
    cursor = fields.String(metadata=KEYSET_DOC)


class PasswordChangeSchema(IdTokenReauthSchema):
    """`current_password`, or (an account without one too) a linked identity's fresh ID token."""

    PASSWORD_FIELD = "current_password"  # noqa: S105 - a field name
    current_password = fields.String(load_only=True, validate=no_nul)
    new_password = PasswordField()


class PasswordChangeByPasswordSchema(Schema):
    current_password = fields.String(required=True, load_only=True, validate=no_nul)
    new_password = PasswordField()


class PasswordChangeByIdTokenSchema(IdTokenProofSchema):
    """Also how an account created through Apple or Google sets its first password."""

    new_password = PasswordField()


# The bodies as the OpenAPI document states them (the schemas above load them).
ME_PATCH_BODY = one_of(MePatchByPasswordSchema, MePatchByIdTokenSchema)
PASSWORD_CHANGE_BODY = one_of(PasswordChangeByPasswordSchema, PasswordChangeByIdTokenSchema)


class EmailTokenSchema(Schema):
    token = fields.String(required=True, load_only=True, validate=EMAIL_TOKEN)


class PasswordResetRequestSchema(Schema):
    email = EmailField(required=True)


class PasswordResetSchema(Schema):
    token = fields.String(required=True, load_only=True, validate=EMAIL_TOKEN)
    new_password = PasswordField()


class AcceptedSchema(Schema):
    status = fields.String(required=True, metadata={"example": "accepted"})
    detail = fields.String(required=True)
