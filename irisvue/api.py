"""The API's conventions, written once: every feature's routes build on these.

* `ApiBlueprint`: flask-smorest's Blueprint with `authenticated()` (bearer check
  that also documents the 401 and the security entry) and `problems()`
  (problem+json answers documented with the codes they carry).
* `current_user_id()` / `current_account` / `current_user`: the signed-in user:
  its id, parsed once per request from the verified token; the account row the
  token check read (flask-jwt-extended's callbacks, registered by the auth
  feature, check revocation and read the account in one query); the mapped
  `User`, loaded on first use by views that change it.
* `streamed()`: a streamed download (decrypted capture or export archive).
* `IrisVueApi`: the smorest `Api`, documenting errors as problem+json and
  declaring the bearer scheme.
* `EnumField`: a string from a fixed set, documented once as a named component
  (`ConsentType`, `JobStatus`, ...) that every use refers to; nullable
  references are documented as `allOf: [$ref]` + `nullable: true`, which
  generators keep typed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from flask import Response, g, stream_with_context
from flask_jwt_extended import current_user as _jwt_current_user
from flask_jwt_extended import get_jwt_identity, jwt_required
from flask_smorest import Api, Blueprint
from marshmallow import fields
from werkzeug.local import LocalProxy
from werkzeug.routing import AnyConverter

from irisvue.errors import PROBLEM_MIMETYPE, APIError, ProblemJsonPlugin, ProblemSchema
from irisvue.extensions import db
from irisvue.models import User

BEARER = [{"bearerAuth": []}]
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token (a refresh token only at POST /api/v1/auth/refresh).",
}
# What a 401 on a bearer-protected operation can carry.
BEARER_CODES = (
    "token_missing, token_invalid (malformed, tampered, wrong algorithm), token_expired, "
    "token_wrong_type, token_revoked, account_disabled"
)
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
NO_STORE = {"Cache-Control": "no-store"}

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
# What may sit next to a reference (wrapped in `allOf`: OpenAPI 3.0 ignores siblings of `$ref`).
_REF_SIBLINGS = ("description", "default", "example", "readOnly", "writeOnly")


class EnumField(fields.String):
    """A string from `values`, documented as the shared component `component`.

    It documents only: validation stays with the schema's own validators.
    """

    # Values → component name: a path segment `<any(...)>` over the same values refers to it too.
    components: dict[frozenset[str], tuple[str, tuple[str, ...]]] = {}

    def __init__(self, component: str, values: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.component = component
        self.values = tuple(values)
        EnumField.components[frozenset(self.values)] = (component, self.values)


def _enum_component(spec: Any, component: str, values: Sequence[str]) -> dict[str, str]:
    existing = spec.components.schemas.get(component)
    if existing is None:
        spec.components.schema(component, {"type": "string", "enum": list(values)})
    elif existing.get("enum") != list(values):  # e.g. a Schema of the same name
        raise ValueError(f"OpenAPI component {component!r} is already something else")
    return {"$ref": f"#/components/schemas/{component}"}


def _reference(converter: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict:
    """Last attribute function: shared enums by reference, nullable references typed."""
    ref: dict[str, str] | None = None
    if isinstance(field, EnumField):
        ref = _enum_component(converter.spec, field.component, field.values)
    else:  # apispec's `anyOf: [$ref, {type: object, nullable}]` for a nullable Nested
        any_of = ret.get("anyOf")
        if isinstance(any_of, list) and len(any_of) == 2 and "$ref" in any_of[0]:
            ref = any_of[0]
        elif "$ref" in ret:
            return {}
        elif isinstance(ret.get("allOf"), list) and len(ret["allOf"]) == 1:
            ref = ret["allOf"][0]
    if ref is None:
        return {}
    siblings = {key: ret[key] for key in _REF_SIBLINGS if key in ret}
    ret.clear()
    if field.allow_none:
        ret.update(allOf=[ref], nullable=True, **siblings)
    elif siblings:
        ret.update(allOf=[ref], **siblings)
    else:
        ret.update(ref)
    return {}


class IrisVueApi(Api):
    """flask-smorest's Api, documenting errors as problem+json documents."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: Any = None, **kwargs: Any) -> None:
        spec_kwargs = kwargs.setdefault("spec_kwargs", {})
        spec_kwargs.setdefault("extra_plugins", [ProblemJsonPlugin()])
        super().__init__(app, **kwargs)
        if app is not None:
            self.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
            self.ma_plugin.converter.add_attribute_function(_reference)
            self.register_converter(AnyConverter, self._any_segment)

    def _any_segment(self, converter: AnyConverter) -> dict[str, Any]:
        """`<any(a, b):name>`: the shared enum over the same values, else an inline one."""
        items = tuple(getattr(converter, "items", ()))
        known = EnumField.components.get(frozenset(items))
        if known is None:
            return {"type": "string", "enum": list(items)}
        return _enum_component(self.spec, *known)

    def _register_pagination_header(self) -> None:
        """Not used: the API pages with cursors in the body (no PaginationMetadata schema)."""


class ApiBlueprint(Blueprint):
    """A smorest Blueprint with the API's auth and error conventions."""

    def problems(
        self, errors: dict[int, str], *, codes: bool = True, retry_after: bool = False
    ) -> Decorator:
        """Document problem+json answers: `{status: "the codes it carries"}`.

        With `codes=False` the text is the whole description; a 429 always
        documents `Retry-After`, the other statuses with `retry_after=True`.
        """

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            for status, text in errors.items():
                fn = self.alt_response(
                    status,
                    schema=ProblemSchema,
                    content_type=PROBLEM_MIMETYPE,
                    description=f"`code`: {text}" if codes else text,
                    headers=RETRY_AFTER if status == 429 or retry_after else None,
                )(fn)
            return fn

        return decorate

    def problem(self, status: int, description: str) -> Decorator:
        """Document one problem+json answer with a free-form description."""
        return self.problems({status: description}, codes=False)

    def authenticated(self, *, refresh: bool = False, codes: str | None = None) -> Decorator:
        """Require a bearer token (an access token, or a refresh token with
        `refresh=True`), and document it: security entry and the 401."""
        text = f"{codes}, {BEARER_CODES}" if codes else BEARER_CODES

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            fn = self.problems({401: text})(fn)
            fn = self.doc(security=BEARER)(fn)
            return jwt_required(refresh=refresh)(fn)

        return decorate

    def no_store(self) -> None:
        """Every response of this blueprint carries personal data: never cache it."""

        @self.after_request
        def _no_store(response: Response) -> Response:
            # `in` first: werkzeug's Headers.setdefault raises and catches a KeyError.
            if "Cache-Control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
            return response


def current_user_id() -> uuid.UUID:
    """The signed-in user's id (from the verified token), parsed once per request."""
    user_id = g.get("irisvue_user_id")
    if user_id is None:
        try:
            user_id = uuid.UUID(str(get_jwt_identity()))
        except ValueError:
            raise APIError(401, "token_invalid", "The token is invalid.") from None
        g.irisvue_user_id = user_id
    return user_id


# The signed-in account as the token check read it (flask-jwt-extended's
# `current_user`, set by the auth feature's `user_lookup_loader`): a read-only
# row with `id`, `email`, `is_active`, `is_verified`, `created_at`,
# `auth_provider`, at no extra query. Views that only read the account use it.
current_account: Any = _jwt_current_user


def _signed_in_user() -> Any:
    user = g.get("irisvue_user")
    if user is None:
        user = db.session.get(User, current_user_id())
        if user is None or not user.is_active:  # changed since the check read it
            raise APIError(401, "account_disabled", "The account is disabled or no longer exists.")
        g.irisvue_user = user
    return user


# The same account as a mapped `User`, for views that change it or hand it to a
# service: loaded on first use (one query), once per request.
current_user: Any = LocalProxy(_signed_in_user)


class Download(Protocol):
    """What `streamed()` sends: plaintext chunks, a size, a name; closed after."""

    size: int
    filename: str

    def __iter__(self) -> Iterable[bytes]: ...

    def close(self) -> None: ...


def streamed(
    download: Download,
    mimetype: str,
    *,
    disposition: str = "inline",
    headers: dict[str, str] | None = None,
) -> Response:
    """Stream a download with its exact length; closed even if never iterated."""
    response = Response(
        stream_with_context(iter(download)),
        status=200,
        mimetype=mimetype,
        headers={
            "Content-Length": str(download.size),
            "Content-Disposition": f'{disposition}; filename="{download.filename}"',
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )
    # Also when the body is never iterated (client gone before the first byte).
    response.call_on_close(download.close)
    return response
