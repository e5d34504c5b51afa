"""Native sign-in over HTTP: nonces, ID tokens, linked identities, Apple's notifications.

Views on the auth blueprint (imported by `irisvue.auth.init_app` before the
blueprint is registered).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from irisvue.api import current_user, current_user_id
from irisvue.auth import apple_notifications, identities, nonces, reauth
from irisvue.auth.identity_schemas import (
    REAUTH_BODY,
    AppleNotificationSchema,
    IdentityListSchema,
    IdentitySchema,
    IdTokenSignInSchema,
    LinkIdentitySchema,
    NonceSchema,
    NotificationAckSchema,
    ReauthSchema,
    SignedInSchema,
)
from irisvue.auth.ratelimit import per_ip, per_user
from irisvue.auth.reauth_schemas import reauth_arguments
from irisvue.auth.routes import blp
from irisvue.auth.tokens import current_session_id

ID_TOKEN_401 = "invalid_id_token (signature, kid, iss, aud, exp/iat, nonce unknown/expired/used)"  # noqa: S105
TOO_LARGE = "payload_too_large (body over MAX_JSON_KB)"
PROVIDER_503 = "provider_unavailable: the provider's keys could not be fetched (none cached)"


@blp.route("/nonce")
class NonceViews(MethodView):
    @per_ip("RATELIMIT_LOGIN_PER_IP", "nonce-ip")
    @blp.doc(operationId="requestNonce")
    @blp.response(201, NonceSchema)
    @blp.problems({429: "rate_limited"})
    def post(self) -> dict[str, Any]:
        """A single-use nonce (10 min) for the provider SDK: pass it sha256-hex encoded."""
        return nonces.issue_nonce()


@blp.route("/id-token")
class IdTokenViews(MethodView):
    @per_ip("RATELIMIT_LOGIN_PER_IP", "id-token-ip")
    @blp.doc(operationId="signInWithIdToken")
    @blp.arguments(IdTokenSignInSchema)
    @blp.response(200, SignedInSchema)
    @blp.problems(
        {
            401: ID_TOKEN_401,
            403: "account_disabled",
            404: "provider_disabled",
            409: "email_taken (unverified email of an existing account), conflict",
            413: TOO_LARGE,
            422: "validation_error",
            429: "rate_limited",
            503: PROVIDER_503,
        }
    )
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in (or sign up) with an Apple or Google ID token: our token pair."""
        return identities.sign_in(
            data["provider"], data["id_token"], data["nonce"], data.get("authorization_code")
        )


@blp.route("/identities")
class IdentitiesViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="listIdentities")
    @blp.response(200, IdentityListSchema)
    def get(self) -> dict[str, Any]:
        """The Apple and Google identities linked to the account."""
        return {"items": identities.list_identities(current_user_id())}

    @blp.authenticated(codes=ID_TOKEN_401)
    @blp.doc(operationId="linkIdentity")
    @blp.arguments(LinkIdentitySchema)
    @blp.response(201, IdentitySchema)
    @blp.problems(
        {
            404: "provider_disabled",
            409: "identity_taken",
            413: TOO_LARGE,
            422: "validation_error",
            503: PROVIDER_503,
        }
    )
    def post(self, data: dict[str, Any]) -> Any:
        """Link another Apple or Google identity to the signed-in account."""
        return identities.link(
            current_user_id(),
            data["provider"],
            data["id_token"],
            data["nonce"],
            data.get("authorization_code"),
        )


@blp.route("/identities/<uuid:identity_id>")
class IdentityByIdViews(MethodView):
    @blp.authenticated(codes=ID_TOKEN_401)
    @per_user("RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER", "unlink", failures_only=True)
    @blp.doc(operationId="unlinkIdentity", requestBody=REAUTH_BODY)
    @blp.arguments(ReauthSchema)
    @blp.response(204)
    @blp.problems(
        {
            403: "invalid_credentials, reauthentication_stale",
            404: "identity_not_found, provider_disabled",
            409: "last_sign_in_method",
            413: TOO_LARGE,
            422: "validation_error",
            429: "rate_limited",
            503: PROVIDER_503,
        }
    )
    def delete(self, data: dict[str, Any], identity_id: uuid.UUID) -> None:
        """Unlink an identity (re-authenticate in the body); never the last way in."""
        reauth.reauthenticate(current_user, **reauth_arguments(data))
        identities.unlink(current_user_id(), identity_id, current_session_id())


@blp.route("/providers/apple/notifications")
class AppleNotificationViews(MethodView):
    @blp.doc(operationId="receiveAppleNotification")
    @blp.arguments(AppleNotificationSchema)
    @blp.response(200, NotificationAckSchema)
    @blp.problems(
        {
            400: "invalid_notification",
            404: "provider_disabled",
            413: TOO_LARGE,
            422: "validation_error",
            503: PROVIDER_503,
        }
    )
    def post(self, data: dict[str, str]) -> dict[str, str]:
        """Apple's server-to-server notifications for Sign in with Apple (handled once)."""
        return apple_notifications.handle(data["payload"])
