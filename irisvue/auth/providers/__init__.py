"""Identity providers (Apple, Google): their configuration, keys and tokens.

Verification only, no database: `jwks` (the providers' signing keys, cached),
`id_tokens` (an ID token or a signed notification checked against them),
`apple` (Apple's token and revoke endpoints, with our ES256 client secret).
The account rules that use them live in `irisvue.auth.identities`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from irisvue.errors import APIError

PROVIDERS = ("apple", "google")


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    client_ids: tuple[str, ...]
    issuers: tuple[str, ...]
    jwks_url: str


def provider_config(name: str) -> ProviderConfig:
    """The provider's settings; 404 `provider_disabled` when its client ids are unset."""
    config = current_app.config
    if name == "apple":
        found = ProviderConfig(
            "apple", config["APPLE_CLIENT_IDS"], (config["APPLE_ISSUER"],), config["APPLE_JWKS_URL"]
        )
    elif name == "google":
        found = ProviderConfig(
            "google",
            config["GOOGLE_CLIENT_IDS"],
            config["GOOGLE_ISSUERS"],
            config["GOOGLE_JWKS_URL"],
        )
    else:  # the schemas refuse other names first
        raise APIError(422, "unknown_provider", "The provider must be `apple` or `google`.")
    if not found.client_ids:
        raise APIError(404, "provider_disabled", f"Sign-in with {name} is not enabled here.")
    return found


def provider_unavailable(name: str) -> APIError:
    return APIError(
        503,
        "provider_unavailable",
        f"{name}'s signing keys cannot be fetched right now; try again shortly.",
    )
