from flask import Flask, Response
from flask_smorest import Blueprint

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Accounts, sign-in, sessions (refresh-token families) and email flows.",
)

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token (a refresh token only at POST /api/v1/auth/refresh).",
}


@blp.after_request
def _no_store(response: Response) -> Response:
    # Every auth response is personal: tokens, the account, sessions.
    response.headers["Cache-Control"] = "no-store"
    return response


def init_auth(app: Flask) -> None:
    """Settings, password hashing, token checks and rate limits (before the Api)."""
    from irisvue.auth.passwords import init_passwords
    from irisvue.auth.ratelimit import init_ratelimit
    from irisvue.auth.settings import AUTH_DEFAULTS, load_settings
    from irisvue.auth.tokens import init_tokens
    from irisvue.extensions import jwt

    load_settings(app, AUTH_DEFAULTS)
    # Tokens travel in headers only; the random `csrf` claim (meant for cookies)
    # would also make a re-signed pair differ from the original.
    app.config["JWT_COOKIE_CSRF_PROTECT"] = False
    init_passwords(app)
    init_tokens(jwt)
    init_ratelimit(app)
    spec_options = app.config.setdefault("API_SPEC_OPTIONS", {})
    schemes = spec_options.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault("bearerAuth", BEARER_SCHEME)


from irisvue.auth import routes  # noqa: E402,F401
