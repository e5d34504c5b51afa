"""problem+json (RFC 9457) for every error source: werkzeug, smorest/webargs,
flask-jwt-extended, SQLAlchemy integrity errors and anything unexpected."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from apispec import BasePlugin
from flask import Flask, Response, current_app, json
from marshmallow import Schema, fields
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError

from irisvue.extensions import db

log = structlog.get_logger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"

# Stable machine-readable codes for the plain HTTP errors.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


class ProblemSchema(Schema):
    """An RFC 9457 problem document."""

    type = fields.String(
        required=True, metadata={"description": "URI identifying the problem type"}
    )
    title = fields.String(
        required=True, metadata={"description": "short summary of the problem type"}
    )
    status = fields.Integer(required=True)
    detail = fields.String(
        required=True, metadata={"description": "what went wrong in this request"}
    )
    code = fields.String(
        required=True, metadata={"description": "stable machine-readable error code"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "field → messages, for validation failures"},
    )


class APIError(HTTPException):
    """Raise from services to answer with a specific status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status  # werkzeug's name for the HTTP status
        self.problem_code = code
        self.errors = errors
        self.extra_headers = headers or {}


def problem(
    status: int,
    code: str | None = None,
    detail: str | None = None,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    from http import HTTPStatus

    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    code = code or DEFAULT_CODES.get(status, "error")
    body: dict[str, Any] = {
        "type": f"urn:irisvue:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs(messages: Any) -> dict[str, Any]:
    """webargs nests messages by location ({"json": {...}}); clients want fields."""
    if not isinstance(messages, dict):
        return {"_body": messages if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, Any] = {}
    for location, value in messages.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[f"_{location}"] = value if isinstance(value, list) else [str(value)]
    return flat


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers: dict[str, str] = {}
    if isinstance(exc, APIError):
        return problem(
            status,
            exc.problem_code,
            exc.description,
            errors=exc.errors,
            headers=exc.extra_headers,
        )
    if status >= 500:
        # Never echo a server-side exception's text.
        return problem(status)
    data = getattr(exc, "data", None) or {}
    errors = None
    code = DEFAULT_CODES.get(status)
    detail = exc.description
    if "messages" in data:  # webargs / smorest validation failure
        errors = _flatten_webargs(data["messages"])
        if status == 400 and any(str(k).startswith("_json") for k in errors):
            code, detail = "invalid_json", "The request body is not valid JSON."
        else:
            detail = "The request failed validation; see `errors`."
    if exc.response is not None:  # e.g. 405 carries `Allow`
        headers.update({k: v for k, v in exc.response.headers.items() if k in {"Allow"}})
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            headers[name] = value
    if "headers" in data and isinstance(data["headers"], dict):
        headers.update(data["headers"])
    return problem(status, code, detail, errors=errors, headers=headers)


def handle_integrity_error(exc: IntegrityError) -> Response:
    db.session.rollback()
    # The constraint's name says which rule broke; the values stay out of the log.
    diag = getattr(exc.orig, "diag", None)  # psycopg2; SQLite has none
    log.warning("integrity_error", constraint=getattr(diag, "constraint_name", None))
    return problem(409, "conflict", "The request conflicts with the current state.")


def handle_database_unavailable(exc: Exception) -> Response:
    db.session.rollback()
    log.error("database_unavailable", error=type(exc).__name__)
    return problem(503, "database_unavailable", "The database is unavailable; retry later.")


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled_exception", error=type(exc).__name__)
    with contextlib.suppress(Exception):  # the session may itself be broken
        db.session.rollback()
    return problem(500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(PoolTimeoutError, handle_database_unavailable)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)


def register_jwt_handlers(jwt: Any) -> None:
    """flask-jwt-extended answers 422 by default; every token problem is a 401."""

    def _invalid(reason: str) -> Response:
        # flask-jwt-extended's WrongTokenError: "Only (non-)refresh tokens are allowed".
        if reason.startswith("Only ") and "refresh tokens are allowed" in reason:
            expected = "an access" if "non-refresh" in reason else "a refresh"
            return problem(401, "token_wrong_type", f"This endpoint takes {expected} token.")
        return problem(401, "token_invalid", "The token is invalid.")

    jwt.invalid_token_loader(_invalid)
    jwt.unauthorized_loader(
        lambda reason: problem(401, "token_missing", "A bearer token is required.")
    )
    jwt.expired_token_loader(
        lambda header, payload: problem(401, "token_expired", "The token has expired.")
    )
    jwt.revoked_token_loader(
        lambda header, payload: problem(401, "token_revoked", "The token has been revoked.")
    )
    jwt.needs_fresh_token_loader(
        lambda header, payload: problem(401, "token_not_fresh", "A fresh login is required.")
    )
    jwt.user_lookup_error_loader(
        lambda header, payload: problem(
            401, "account_disabled", "The account is disabled or no longer exists."
        )
    )
    # Claims check (e.g. a token without a session id); its default is a 400.
    jwt.token_verification_failed_loader(
        lambda header, payload: problem(401, "token_invalid", "The token is invalid.")
    )


class ProblemJsonPlugin(BasePlugin):
    """Documents every error response as `application/problem+json`, as served.

    flask-smorest documents error responses (its own 422 and `alt_response`s)
    with the default JSON media type; this rewrites them once, when the spec is
    built, so clients and contract tests see the type the server really sends.
    """

    @staticmethod
    def _as_problem(response: dict[str, Any]) -> dict[str, Any]:
        content = response.get("content")
        if isinstance(content, dict) and "application/json" in content:
            response["content"] = {PROBLEM_MIMETYPE: content["application/json"]}
        return response

    def response_helper(self, response: dict, **kwargs: Any) -> dict | None:
        # smorest registers only error responses as components (DEFAULT_ERROR, 422, ...).
        return self._as_problem(dict(response))

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            for status, response in (operation.get("responses") or {}).items():
                is_error = str(status) == "default" or str(status)[:1] in {"4", "5"}
                if is_error and isinstance(response, dict):
                    self._as_problem(response)
