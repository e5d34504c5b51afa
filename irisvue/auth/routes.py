from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_jwt_extended import get_jwt

from irisvue.api import ApiBlueprint, current_account, current_user, current_user_id
from irisvue.auth import reauth, services, sessions
from irisvue.auth.ratelimit import per_email, per_ip, per_user
from irisvue.auth.reauth_schemas import reauth_arguments
from irisvue.auth.schemas import (
    ME_PATCH_BODY,
    PASSWORD_CHANGE_BODY,
    AcceptedSchema,
    CredentialsSchema,
    EmailTokenSchema,
    LoginSchema,
    MePatchSchema,
    PasswordChangeSchema,
    PasswordResetRequestSchema,
    PasswordResetSchema,
    RegisteredSchema,
    SessionListSchema,
    SessionQueryArgsSchema,
    TokenPairSchema,
    UserSchema,
)
from irisvue.auth.tokens import current_session_id

blp = ApiBlueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Accounts, sign-in, sessions (refresh-token families) and email flows.",
)
blp.no_store()  # every auth response is personal: tokens, the account, sessions
# Re-authentication by a linked identity's ID token (irisvue.auth.reauth) can also answer:
REAUTH_401 = "invalid_id_token (re-authentication)"
REAUTH_PROBLEMS = {
    404: "provider_disabled",
    413: "payload_too_large (body over MAX_JSON_KB)",
    503: "provider_unavailable",
}
SESSION_LINKS = {
    "DeleteSession": {
        "operationId": "deleteSession",
        "parameters": {"session_id": "$response.body#/items/0/id"},
        "description": "revoke the newest session of the page",
    }
}


@blp.route("/register")
class RegisterViews(MethodView):
    @per_ip("RATELIMIT_REGISTER_PER_IP", "register-ip")
    @per_email("RATELIMIT_REGISTER_PER_EMAIL", "register-email")
    @blp.arguments(CredentialsSchema)
    @blp.response(201, RegisteredSchema)
    @blp.problems(
        {409: "email_taken", 422: "validation_error, password_too_common", 429: "rate_limited"}
    )
    @blp.doc(operationId="register")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Create an account; signs in and queues a verification email."""
        return services.register(data["email"], data["password"])


@blp.route("/login")
class LoginViews(MethodView):
    # The per-account failure budget is taken before the password check (auth.lockout).
    @per_ip("RATELIMIT_LOGIN_PER_IP", "login-ip")
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.problems({401: "invalid_credentials", 403: "account_disabled", 429: "rate_limited"})
    @blp.doc(operationId="login")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Sign in with email and password: a new session and its token pair."""
        return services.login(data["email"], data["password"]).as_dict()


@blp.route("/refresh")
class RefreshViews(MethodView):
    @blp.authenticated(refresh=True, codes="token_reused, session_expired")
    @blp.response(200, TokenPairSchema)
    @blp.doc(operationId="refreshTokens")
    def post(self) -> dict[str, Any]:
        """Rotate the session: spend the refresh token (the Bearer), get a new pair."""
        return sessions.refresh(get_jwt()).as_dict()


@blp.route("/logout")
class LogoutViews(MethodView):
    @blp.authenticated()
    @blp.response(204)
    @blp.doc(operationId="logout")
    def post(self) -> None:
        """Revoke the current session: its refresh token and its access tokens."""
        sessions.logout(uuid.UUID(get_jwt()["sid"]))


@blp.route("/logout-all")
class LogoutAllViews(MethodView):
    @blp.authenticated()
    @blp.response(204)
    @blp.doc(operationId="logoutAll")
    def post(self) -> None:
        """Revoke every session of the account, this one included."""
        sessions.logout_all(current_user_id())


@blp.route("/sessions")
class SessionsViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="listSessions", responses={200: {"links": SESSION_LINKS}})
    @blp.arguments(SessionQueryArgsSchema, location="query")
    @blp.response(200, SessionListSchema)
    @blp.problems({422: "validation_error, invalid_cursor"})
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the account's live sessions, newest first; the calling one is flagged."""
        return sessions.list_sessions(
            current_user_id(), current_session_id(), args["limit"], args.get("cursor")
        )


@blp.route("/sessions/<uuid:session_id>")
class SessionByIdViews(MethodView):
    @blp.authenticated()
    @blp.doc(operationId="deleteSession")
    @blp.response(204)
    @blp.problems({404: "session_not_found"})
    def delete(self, session_id: uuid.UUID) -> None:
        """Revoke one of the account's sessions."""
        sessions.delete_session(current_user_id(), session_id)


@blp.route("/me")
class MeViews(MethodView):
    @blp.authenticated()
    @blp.response(200, UserSchema)
    @blp.doc(operationId="getMe")
    def get(self) -> Any:
        """The signed-in account."""
        # The row's mapping: marshmallow reads each field as `obj[name]` first, which
        # on a Row raises TypeError before it falls back to getattr (py-spy: ~3% of /me).
        return current_account._mapping

    @blp.authenticated(codes=REAUTH_401)
    # Every request counts (200, 403 and 409 alike): no email oracle, no Argon2 sink;
    # each password check also draws on the account's failure budget.
    @per_user("RATELIMIT_EMAIL_CHANGE_PER_USER", "me-email")
    @blp.doc(requestBody=ME_PATCH_BODY)
    @blp.arguments(MePatchSchema)
    @blp.response(200, UserSchema)
    @blp.problems(
        {
            403: "invalid_credentials, reauthentication_stale",
            409: "email_taken",
            429: "rate_limited",
            **REAUTH_PROBLEMS,
        }
    )
    @blp.doc(operationId="updateMe")
    def patch(self, data: dict[str, str]) -> Any:
        """Change the account's email (re-authenticate; the new one is re-verified)."""
        if "current_password" not in data:  # a linked identity's fresh ID token instead
            reauth.reauthenticate(current_user, **reauth_arguments(data, "current_password"))
        return services.change_email(current_user, data["email"], data.get("current_password"))


@blp.route("/password")
class PasswordViews(MethodView):
    @blp.authenticated(codes=REAUTH_401)
    @per_user("RATELIMIT_PASSWORD_CHANGE_FAILURES_PER_USER", "password", failures_only=True)
    @blp.doc(requestBody=PASSWORD_CHANGE_BODY)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.problems(
        {
            403: "invalid_credentials, reauthentication_stale",
            422: "validation_error, password_too_common",
            429: "rate_limited",
            **REAUTH_PROBLEMS,
        }
    )
    @blp.doc(operationId="changePassword")
    def post(self, data: dict[str, str]) -> None:
        """Set or change the password (re-authenticate); every other session is revoked."""
        if "current_password" not in data:  # a linked identity's fresh ID token instead
            reauth.reauthenticate(current_user, **reauth_arguments(data, "current_password"))
        services.change_password(
            current_user, current_session_id(), data.get("current_password"), data["new_password"]
        )


@blp.route("/verify-email/request")
class VerifyEmailRequestViews(MethodView):
    @blp.authenticated()
    @per_user("RATELIMIT_VERIFY_EMAIL_PER_USER", "verify-email-request")
    @blp.response(202, AcceptedSchema)
    @blp.problems({409: "already_verified", 429: "rate_limited"})
    @blp.doc(operationId="requestEmailVerification")
    def post(self) -> dict[str, str]:
        """(Re)send the verification email; an earlier link stops working."""
        services.request_verification(current_user)
        return {"status": "accepted", "detail": "A verification email is on its way."}


@blp.route("/verify-email")
class VerifyEmailViews(MethodView):
    @per_ip("RATELIMIT_EMAIL_TOKEN_PER_IP", "email-token")
    @blp.arguments(EmailTokenSchema)
    @blp.response(200, UserSchema)
    @blp.problems({403: "email_token_invalid, email_token_expired", 429: "rate_limited"})
    @blp.doc(operationId="verifyEmail")
    def post(self, data: dict[str, str]) -> Any:
        """Consume a verification token (single use, 24 h)."""
        return services.verify_email(data["token"])


@blp.route("/password-reset/request")
class PasswordResetRequestViews(MethodView):
    @per_ip("RATELIMIT_PASSWORD_RESET_PER_IP", "password-reset-ip")
    @per_email("RATELIMIT_PASSWORD_RESET_PER_EMAIL", "password-reset-email")
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202, AcceptedSchema)
    @blp.problems({429: "rate_limited"})
    @blp.doc(operationId="requestPasswordReset")
    def post(self, data: dict[str, str]) -> dict[str, str]:
        """Ask for a reset email; the answer is the same whether the account exists or not."""
        services.request_password_reset(data["email"])
        return {
            "status": "accepted",
            "detail": "If an account uses this address, a reset email is on its way.",
        }


@blp.route("/password-reset")
class PasswordResetViews(MethodView):
    @per_ip("RATELIMIT_EMAIL_TOKEN_PER_IP", "email-token")
    @blp.arguments(PasswordResetSchema)
    @blp.response(204)
    @blp.problems(
        {
            403: "email_token_invalid, email_token_expired",
            422: "validation_error, password_too_common",
            429: "rate_limited",
        }
    )
    @blp.doc(operationId="resetPassword")
    def post(self, data: dict[str, str]) -> None:
        """Set a new password with a reset token (single use, 1 h); signs out everywhere."""
        services.reset_password(data["token"], data["new_password"])
