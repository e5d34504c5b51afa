"""Checks of request text that every route needs, done once before any view runs.

PostgreSQL's `text` cannot hold NUL (psycopg2 raises ValueError, which would be
a 500) nor UTF-16 surrogates (UnicodeEncodeError), and RFC 9110 forbids NUL, CR
and LF in header fields; Python's JSON parser recurses per nesting level and
refuses integers over 4300 digits with a ValueError; a socket error while the
body is read (a stalled or vanished client) would surface as an unhandled
exception. Each of these is a client error, so it is refused here,
generically, instead of per endpoint (`init_request_guards`, from create_app).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response

from irisvue.errors import APIError, problem

# Deeper than any of our schemas, far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 32

# NUL, and lone UTF-16 surrogates (valid JSON escapes, unencodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_HEADER_FORBIDDEN = re.compile("[\x00\r\n]")


class BadJsonError(ValueError):
    """The body is not JSON we accept; the message is safe to show the client."""


class BadTextError(ValueError):
    """A JSON string holds a character the service cannot store; `errors` says where."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("unstorable characters")
        self.errors = errors


def unstorable(value: str) -> bool:
    """True if `value` holds NUL or a lone surrogate (PostgreSQL refuses both)."""
    return _UNSTORABLE.search(value) is not None


def bad_header(value: str) -> bool:
    """True if a header value holds NUL, CR or LF (never valid, RFC 9110 §5.5)."""
    return _HEADER_FORBIDDEN.search(value) is not None


def _reject_constant(name: str) -> Any:
    # NaN and ±Infinity are Python extensions, not JSON (RFC 8259 §6).
    raise BadJsonError(f"`{name}` is not a JSON number.")


def parse_json(data: bytes) -> Any:
    """Parses a request body strictly: UTF-8, RFC 8259 numbers, bounded depth, storable text.

    Raises BadJsonError (not JSON we accept) or BadTextError (a string holds NUL or a
    lone surrogate).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJsonError("The request body is not valid UTF-8.") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadJsonError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except BadJsonError:
        raise
    except ValueError:  # JSONDecodeError, and int() of an over-long number
        raise BadJsonError("The request body is not valid JSON.") from None
    _inspect(document)
    return document


def _inspect(document: Any) -> None:
    """Walks the document without recursion: depth, and every key and string."""
    errors: dict[str, list[str]] = {}
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise BadJsonError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
            items: Iterable[tuple[Any, Any]] = (
                node.items() if isinstance(node, dict) else enumerate(node)
            )
            for key, value in items:
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and unstorable(key):
                    errors[_printable(name)] = ["Field names may not contain NUL or surrogates."]
                    continue
                stack.append((value, name, depth + 1))
        elif isinstance(node, str) and unstorable(node):
            errors[path or "_json"] = ["Text may not contain NUL characters or lone surrogates."]
    if errors:
        raise BadTextError(errors)


def _printable(name: str) -> str:
    # The offending key itself goes back to the client: make it storable and visible.
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", name)


class ClientInput:
    """`wsgi.input` whose socket errors become a 400 problem, not a 500.

    gunicorn raises TimeoutError (GUNICORN_BODY_TIMEOUT) or ConnectionError from
    a body read; uncaught, that is an "unhandled exception" and a 500 for what
    is a client that stalled or went away. Cleanup still runs: it is an exception.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, name)(*args)
        except OSError:
            raise APIError(
                400, "incomplete_body", "The request body was not received completely."
            ) from None

    def read(self, *args: Any) -> bytes:
        return self._call("read", *args)

    def readline(self, *args: Any) -> bytes:
        return self._call("readline", *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._call("readlines", *args)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# The two headers WSGI keeps without the HTTP_ prefix.
_BODY_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


def headers_clean(environ: dict[str, Any]) -> bool:
    """False if any header value holds NUL, CR or LF (the request is then a 400).

    One search over every header value joined: a few µs per request.
    """
    headers = "".join(
        [
            value
            for name, value in environ.items()
            if name.startswith("HTTP_") or name in _BODY_HEADERS
        ]
    )
    return not bad_header(headers)


def _view_accepts_multipart(app: Flask, endpoint: str | None) -> bool:
    view = app.view_functions.get(endpoint or "")
    view_class = getattr(view, "view_class", None)
    return bool(getattr(view_class or view, "accepts_multipart", False))


def init_request_guards(app: Flask) -> None:
    """Refuse what no route can take before any view reads it.

    Every request: NUL/CR/LF in a header value, NUL in the path or the query
    (400). JSON routes get a small body cap (MAX_JSON_KB) and a strict parse
    (parse_json: UTF-8, depth, numbers, NUL and surrogates); only routes
    that opt in with `accepts_multipart = True` take multipart uploads, capped
    by MAX_CONTENT_LENGTH (MAX_UPLOAD_MB). A body that stops arriving is a 400.
    """
    from flask import request

    @app.before_request
    def _guard_text() -> Response | None:
        # First, before anything reads the body: a socket error while reading it
        # (the server's read timeout, a reset) is the client's failure, a 400.
        request.environ["wsgi.input"] = ClientInput(request.environ["wsgi.input"])
        # Before routing matters: a bad header or a NUL in the path is refused
        # even on routes that would 404, and before any view or service sees it.
        if not headers_clean(request.environ):
            return problem(400, "invalid_header", "A header value holds NUL, CR or LF.")
        if unstorable(request.path):
            return problem(400, "invalid_path", "The path holds a NUL character.")
        for key, value in request.args.items(multi=True):
            if unstorable(key) or unstorable(value):
                return problem(400, "invalid_query", "The query string holds a NUL character.")
        return None

    @app.before_request
    def _guard_body() -> Response | None:
        if request.url_rule is None or request.method in {"GET", "HEAD", "OPTIONS"}:
            return None
        has_body = (
            bool(request.content_length)
            or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        )
        if not has_body:
            return None
        mimetype = request.mimetype or ""
        if mimetype == "multipart/form-data" and _view_accepts_multipart(app, request.endpoint):
            return None
        cap = app.config["MAX_JSON_KB"] * 1024
        if request.content_length is not None and request.content_length > cap:
            return problem(413, "payload_too_large", "The request body is too large.")
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            return problem(
                415, "unsupported_media_type", "Send the request body as application/json."
            )
        if request.content_length is None:
            # Chunked: werkzeug stops reading at the limit and returns the truncated
            # body without an error, so read it here (cap + 1 bytes at most) and
            # measure; the views get the cached bytes.
            request.max_content_length = cap + 1
            if len(request.get_data(cache=True)) > cap:
                return problem(413, "payload_too_large", "The request body is too large.")
        request.max_content_length = cap
        return _check_json(request.get_data(cache=True))


def _check_json(data: bytes) -> Response | None:
    """Refuses a JSON body the parsers or the database would choke on (see parse_json).

    Views parse the body again (webargs); the cached bytes are the same, and
    after this check that parse cannot fail in a way that becomes a 500.
    """
    try:
        parse_json(data)
    except BadTextError as exc:
        return problem(
            422,
            "validation_error",
            "The request failed validation; see `errors`.",
            errors=exc.errors,
        )
    except BadJsonError as exc:
        return problem(400, "invalid_json", str(exc))
    return None
