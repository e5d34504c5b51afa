"""The operations of the OpenAPI document the app serves, and what a clean answer is.

The document is read at import (an embedded app in a temporary directory
builds it; no server is touched), so a new endpoint is attacked by the abuse
tests without anyone editing them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.users import PASSWORD

PROBLEM = "application/problem+json"
# What a stack trace or a server-side exception would put into a body.
LEAKS = ("Traceback", 'File "', "psycopg2", "sqlalchemy", "Exception", "/site-packages/")
# Variables that would point the collection-time app at the test stack.
_STACK_VARS = ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "IRISVUE_ENV")


def _served_spec() -> dict[str, Any]:
    from irisvue import create_app

    saved = dict(os.environ)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # create_app reconfigures logging
    with tempfile.TemporaryDirectory(prefix="irisvue-abuse-spec-") as instance:
        try:
            for name in _STACK_VARS:
                os.environ.pop(name, None)
            os.environ["IRISVUE_INSTANCE_PATH"] = instance
            app = create_app()
            spec = app.test_client().get("/api/openapi.json").get_json()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            root.handlers[:] = handlers
            root.setLevel(level)
    return spec


SPEC = _served_spec()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI template: /api/v1/captures/{capture_id}
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(self.spec.get("parameters", []))

    def params_in(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.parameters if p["in"] == where]

    @property
    def json_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return resolve(schema) if schema else None

    @property
    def takes_body(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH", "DELETE"}

    @property
    def documented(self) -> set[str]:
        return set(self.spec["responses"])


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` names; of a `oneOf` (e.g. password | ID-token re-authentication),
    the first shape."""
    while "$ref" in schema or "oneOf" in schema:
        if "oneOf" in schema:
            schema = schema["oneOf"][0]
            continue
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def operations() -> list[Operation]:
    found = []
    for path, item in SPEC["paths"].items():
        shared = item.get("parameters", [])
        for method, spec in item.items():
            if method == "parameters":
                continue
            spec = {**spec, "parameters": [*shared, *spec.get("parameters", [])]}
            found.append(Operation(method.upper(), path, spec))
    return found


OPERATIONS = operations()


def ops(predicate=lambda op: True) -> list[Any]:
    return [pytest.param(op, id=op.id) for op in OPERATIONS if predicate(op)]


def example(name: str, prop: dict[str, Any]) -> Any:
    """A value a well-behaved client would send for this property."""
    prop = resolve(prop)
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type")
    if kind == "integer":
        return max(1, prop.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if prop.get("format") == "uuid":
        return str(uuid.uuid4())
    if "password" in name:
        return PASSWORD if name != "new_password" else "indigo-falcon-meadow-77"
    if "email" in name:
        return f"abuse-{uuid.uuid4().hex[:10]}@example.com"
    if name == "locale":
        return "en"
    return "x" * max(1, prop.get("minLength", 1))


def baseline(schema: dict[str, Any]) -> dict[str, Any]:
    """A body with every property set to a plausible value (required or not)."""
    return {name: example(name, prop) for name, prop in schema.get("properties", {}).items()}


def string_fields(schema: dict[str, Any] | None) -> list[str]:
    if not schema:
        return []
    return [
        name
        for name, prop in schema.get("properties", {}).items()
        if resolve(prop).get("type") == "string"
    ]


def url_for(op: Operation, **values: str) -> str:
    path = op.path
    for param in op.params_in("path"):
        name = param["name"]
        value = values.get(name)
        if value is None:
            value = example(name, param.get("schema", {}))
        path = path.replace("{" + name + "}", value)
    return path


def assert_clean(op: Operation, response, *, allow: set[int] | None = None) -> int:
    """No 5xx, no trace; an error is problem+json, a success one the operation documents."""
    status = response.status_code
    text = response.get_data(as_text=True) if response.mimetype != "application/zip" else ""
    assert status < 500, f"{op.id}: {status} {text[:500]}"
    for leak in LEAKS:
        assert leak not in text, f"{op.id}: {status} leaks {leak!r}: {text[:500]}"
    if status >= 400:
        assert response.mimetype == PROBLEM, f"{op.id}: {status} {response.mimetype}"
        body = json.loads(text)
        assert body["status"] == status and body["code"], body
    else:
        assert str(status) in op.documented, f"{op.id}: undocumented {status}"
    if allow is not None:
        assert status in allow, f"{op.id}: {status} not in {sorted(allow)}: {text[:300]}"
    return status
