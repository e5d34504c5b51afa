"""Fields of re-authentication and of ID tokens, shared by every schema that takes them."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from irisvue.auth.providers import PROVIDERS
from irisvue.auth.providers.id_tokens import MAX_TOKEN_LENGTH

# A compact JWS: three base64url parts (the signature may be empty only to be refused later).
JWS_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"


def ProviderField(**kwargs: Any) -> fields.String:  # noqa: N802
    return fields.String(
        validate=validate.OneOf(PROVIDERS),
        metadata={"enum": list(PROVIDERS), "description": "the identity provider"},
        **kwargs,
    )


def IdTokenField(**kwargs: Any) -> fields.String:  # noqa: N802
    return fields.String(
        load_only=True,
        validate=[validate.Length(max=MAX_TOKEN_LENGTH), validate.Regexp(JWS_PATTERN)],
        metadata={
            "description": f"the provider's OpenID Connect ID token (at most {MAX_TOKEN_LENGTH} "
            "characters)"
        },
        **kwargs,
    )


def NonceField(**kwargs: Any) -> fields.String:  # noqa: N802
    return fields.String(
        load_only=True,
        validate=validate.Regexp(NONCE_PATTERN),
        metadata={"description": "the raw nonce from POST /auth/nonce (not its hash)"},
        **kwargs,
    )


class IdTokenProofSchema(Schema):
    """Re-authentication by a linked identity: a fresh ID token and its nonce."""

    provider = ProviderField(required=True)
    id_token = IdTokenField(required=True)
    nonce = NonceField(required=True)


def one_of(*variants: type[Schema]) -> dict[str, Any]:
    """The OpenAPI request body of an operation taking one of several exact shapes
    (the schema that loads it checks the same rule): for `@blp.doc(requestBody=...)`."""
    return {"content": {"application/json": {"schema": {"oneOf": list(variants)}}}}


class IdTokenReauthSchema(Schema):
    """`{provider, id_token, nonce}` of a linked identity, issued within 5 minutes, as
    the alternative to a password (the schema using it names its password field)."""

    PASSWORD_FIELD = "password"  # noqa: S105 - a field name

    provider = ProviderField()
    id_token = IdTokenField()
    nonce = NonceField()

    @validates_schema
    def _one_way(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [name for name in ("provider", "id_token", "nonce") if name in data]
        has_password = self.PASSWORD_FIELD in data
        if has_password and given:
            raise ValidationError(
                f"Send either `{self.PASSWORD_FIELD}` or `provider`, `id_token` and `nonce`."
            )
        if not has_password and len(given) != 3:
            missing = [n for n in ("provider", "id_token", "nonce") if n not in data]
            if not given:
                raise ValidationError(
                    "Re-authenticate: send the password, or `provider`, `id_token` and `nonce`.",
                    self.PASSWORD_FIELD,
                )
            raise ValidationError({name: ["Missing data for required field."] for name in missing})


def reauth_arguments(data: dict[str, Any], password_field: str = "password") -> dict[str, Any]:  # noqa: S107
    """What `irisvue.auth.reauth.reauthenticate` takes, from a loaded body."""
    return {
        "password": data.get(password_field),
        "provider": data.get("provider"),
        "id_token": data.get("id_token"),
        "nonce": data.get("nonce"),
    }
