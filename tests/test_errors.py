"""Every error is problem+json with a stable code; every response carries X-Request-ID.

Routes that take a body do not exist yet in every blueprint, so the tests that
need one register a throwaway smorest blueprint on their own app instance: the
error handlers and request guards under test are the app's real ones.
"""

from __future__ import annotations

import gc
import io
import json
import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from irisvue import create_app
from irisvue.extensions import db
from irisvue.observability import configure_logging

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
LEAK = "hunter2-db-password"


class ItemSchema(Schema):
    name = fields.String(required=True)
    count = fields.Integer(required=True)


def probe_blueprint() -> Blueprint:
    """A fresh blueprint per app: a JSON route, an upload route and two failing routes."""
    blp = Blueprint("probe", __name__, url_prefix="/_probe")

    @blp.route("/items")
    class Items(MethodView):
        @blp.arguments(ItemSchema)
        @blp.response(201, ItemSchema)
        def post(self, data):
            """Echo a validated item."""
            return data

    @blp.route("/upload")
    class Upload(MethodView):
        accepts_multipart = True

        def post(self):
            """Count the uploaded files (reading them enforces MAX_CONTENT_LENGTH)."""
            return {"files": len(request.files)}

    @blp.route("/boom")
    class Boom(MethodView):
        def get(self):
            """Fail with text that must never reach the client."""
            raise RuntimeError(f"connection failed: password={LEAK} at /srv/irisvue/app.py")

    @blp.route("/duplicate")
    class Duplicate(MethodView):
        def post(self):
            """Insert the same email twice: a unique constraint violation."""
            from irisvue.models import User

            email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
            db.session.add(User(email=email))
            db.session.commit()
            db.session.add(User(email=email))
            db.session.commit()
            return {}

    return blp


def with_probe(application: Flask) -> Flask:
    api = application.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    api.register_blueprint(probe_blueprint())
    return application


@pytest.fixture
def probe(app: Flask):
    return with_probe(app).test_client()


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(response.get_data(as_text=True))
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] and body["title"] and body["detail"]
    assert response.headers.get("X-Request-ID")
    return body


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/no/such/route"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/health")
    assert_problem(response, 405, "method_not_allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed
    assert "DELETE" not in allowed


def test_json_body_over_max_json_kb_is_413(app, probe):
    cap = app.config["MAX_JSON_KB"] * 1024
    body = json.dumps({"name": "x" * cap, "count": 1})
    response = probe.post("/_probe/items", data=body, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


def test_chunked_json_body_over_max_json_kb_is_413(app, probe):
    # No Content-Length: the cap must hold while the body is read, not only up front.
    cap = app.config["MAX_JSON_KB"] * 1024
    body = json.dumps({"name": "x" * cap, "count": 1}).encode()
    response = probe.post(
        "/_probe/items",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 413, "payload_too_large")


def multipart(size: int) -> tuple[bytes, str]:
    """A multipart body with one file (built here: the test client leaks a temp file)."""
    boundary, body = encode_multipart(
        {"file": FileStorage(io.BytesIO(b"x" * size), "iris.bin", "file")}
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(False, id="content-length"),
        # werkzeug's multipart parser drops the half-written temp file of the part
        # it was reading when the limit hits (closed by refcounting, but warned).
        pytest.param(
            True, id="chunked", marks=pytest.mark.filterwarnings("ignore::ResourceWarning")
        ),
    ],
)
def test_upload_over_max_content_length_is_413(stack_env, chunked):
    application = with_probe(create_app({"MAX_UPLOAD_MB": 1}))
    cap = application.config["MAX_CONTENT_LENGTH"]
    client = application.test_client()

    def post(size: int):
        body, content_type = multipart(size)
        if not chunked:
            return client.post("/_probe/upload", data=body, content_type=content_type)
        return client.post(
            "/_probe/upload",
            input_stream=io.BytesIO(body),
            headers={"Content-Type": content_type, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    small = post(1024)
    assert small.status_code == 200, small.get_data(as_text=True)
    assert small.get_json() == {"files": 1}
    assert_problem(post(cap + 1), 413, "payload_too_large")
    gc.collect()  # any warning of this test's objects is raised here, not in a later test


def test_multipart_to_a_json_route_is_refused(probe):
    body, content_type = multipart(10)
    response = probe.post("/_probe/items", data=body, content_type=content_type)
    assert_problem(response, 415, "unsupported_media_type")


def test_text_plain_body_to_json_route_is_415(probe):
    response = probe.post("/_probe/items", data="name=x", content_type="text/plain")
    assert_problem(response, 415, "unsupported_media_type")


def test_malformed_json_is_400_invalid_json(probe):
    response = probe.post("/_probe/items", data='{"name": "x",', content_type="application/json")
    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "count": 1, "admin": True}, "admin"),  # unknown field
        ({"name": "x", "count": "many"}, "count"),  # wrong type
        ({"name": "x"}, "count"),  # missing field
    ],
)
def test_validation_failure_is_422_with_errors_per_field(probe, payload, field):
    response = probe.post("/_probe/items", json=payload)
    body = assert_problem(response, 422, "validation_error")
    assert set(body["errors"]) == {field}
    assert isinstance(body["errors"][field], list) and body["errors"][field]


def test_valid_body_passes_the_guards(probe):
    response = probe.post("/_probe/items", json={"name": "x", "count": 2})
    assert response.status_code == 201
    assert response.get_json() == {"name": "x", "count": 2}


@pytest.fixture
def log_buffer(app: Flask) -> Iterator[io.StringIO]:
    """The app's real logging pipeline, writing into a buffer instead of stdout."""
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    configure_logging(app.config["LOG_LEVEL"])


def test_exception_in_view_is_500_without_leak_and_logged(probe, log_buffer):
    response = probe.get("/_probe/boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    for secret in (LEAK, "Traceback", "RuntimeError", "app.py"):
        assert secret not in text
    assert body["detail"] == body["title"]
    logged = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    errors = [entry for entry in logged if entry.get("event") == "unhandled_exception"]
    assert len(errors) == 1, logged
    assert errors[0]["request_id"] == "boom-1"
    assert errors[0]["level"] == "error"
    assert "RuntimeError" in errors[0]["exception"]


def test_integrity_error_is_409(probe):
    assert_problem(probe.post("/_probe/duplicate"), 409, "conflict")


def test_valid_request_id_is_echoed(client):
    for path in ("/health", "/no/such/route"):
        response = client.get(path, headers={"X-Request-ID": "req-42.abc:DEF_9"})
        assert response.headers["X-Request-ID"] == "req-42.abc:DEF_9"


@pytest.mark.parametrize(
    "incoming",
    [None, "x" * 1000, "abc\r\nSet-Cookie: session=evil", "abc\ndef", "", "has space"],
    ids=["absent", "too-long", "crlf", "lf", "empty", "space"],
)
def test_request_id_generated_when_absent_or_invalid(client, incoming):
    overrides = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    response = client.get("/health", environ_overrides=overrides)
    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert "Set-Cookie" not in response.headers
    again = client.get("/health", environ_overrides=overrides).headers["X-Request-ID"]
    assert again != generated
