"""Hostile JSON bodies against every operation that can take one.

Broken encodings, NUL, lone surrogates, deep nesting, huge numbers and oversized
bodies are refused by the request guards (irisvue/guards.py) before
any view runs, so each answer is the same wherever it is sent.
"""

from __future__ import annotations

import json

import pytest

from tests.support.openapi import Operation, assert_clean, baseline, ops, string_fields, url_for
from tests.support.users import fresh_ip


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _with_every_string(op: Operation, value: str) -> bytes:
    schema = op.json_schema or {"properties": {"note": {"type": "string"}}}
    body = baseline(schema)
    for name in string_fields(schema) or ["note"]:
        body[name] = value
    return json.dumps(body).encode()  # ensure_ascii: NUL and surrogates as \u escapes


# (body, status, code): what the guard answers, whatever the route.
GUARDED = {
    "invalid-utf8": (lambda op: b'{"email": "\xff\xfe\xc0\xaf"}', 400, "invalid_json"),
    "overlong-utf8-nul": (lambda op: b'{"email": "a\xc0\x80b"}', 400, "invalid_json"),
    "utf16-body": (lambda op: '{"email": "a"}'.encode("utf-16"), 400, "invalid_json"),
    "raw-nul": (lambda op: b'{"email": "a\x00b"}', 400, "invalid_json"),
    "escaped-nul": (lambda op: _with_every_string(op, "a\x00b"), 422, "validation_error"),
    "nul-in-key": (lambda op: b'{"em\\u0000ail": "x"}', 422, "validation_error"),
    "lone-surrogate": (lambda op: _with_every_string(op, "a\ud800b"), 422, "validation_error"),
    "nested-33": (lambda op: _nested(33), 400, "invalid_json"),
    "nested-5000": (lambda op: _nested(5000), 400, "invalid_json"),
    "array-nested-20000": (lambda op: b"[" * 20000 + b"]" * 20000, 400, "invalid_json"),
    "huge-integer": (lambda op: b'{"n": 1' + b"0" * 5000 + b"}", 400, "invalid_json"),
    "nan": (lambda op: b'{"n": NaN}', 400, "invalid_json"),
    "infinity": (lambda op: b'{"n": -Infinity}', 400, "invalid_json"),
    "truncated": (lambda op: b'{"email": "a', 400, "invalid_json"),
    "trailing-garbage": (lambda op: b'{"email": "a"} {}', 400, "invalid_json"),
    "oversized": (lambda op: b'{"email": "' + b"a" * (64 * 1024 + 1) + b'"}', 413, None),
}


@pytest.mark.parametrize("kind", sorted(GUARDED))
@pytest.mark.parametrize("op", ops(lambda op: op.takes_body))
def test_hostile_json_is_refused_by_the_guards(shared, op, kind):
    client, actor = shared
    make, status, code = GUARDED[kind]
    response = client.open(
        url_for(op),
        method=op.method,
        data=make(op),
        content_type="application/json",
        headers=actor.headers,
        environ_overrides=fresh_ip(),
    )
    assert_clean(op, response, allow={status})
    body = response.get_json(force=True)
    assert body["code"] == (code or "payload_too_large")
    if kind in {"escaped-nul", "lone-surrogate"}:
        # Each offending field is named, so a client knows what to fix.
        schema = op.json_schema
        expected = set(string_fields(schema)) if schema else {"note"}
        assert set(body["errors"]) == (expected or {"note"}), body


@pytest.mark.parametrize("op", ops(lambda op: op.json_schema is not None))
def test_unknown_fields_are_422(shared, op):
    client, actor = shared
    body = {**baseline(op.json_schema), "is_admin": True, "__proto__": {"x": 1}}
    response = client.open(
        url_for(op),
        method=op.method,
        json=body,
        headers=actor.headers,
        environ_overrides=fresh_ip(),
    )
    assert_clean(op, response, allow={422})
    assert set(response.get_json()["errors"]) >= {"is_admin", "__proto__"}


# Not JSON objects at all: the schema (not the guard) refuses them.
@pytest.mark.parametrize("document", ["[]", '"x"', "null", "1", "true", "[{}]"])
@pytest.mark.parametrize("op", ops(lambda op: op.json_schema is not None))
def test_non_object_bodies_are_4xx(shared, op, document):
    client, actor = shared
    response = client.open(
        url_for(op),
        method=op.method,
        data=document,
        content_type="application/json",
        headers=actor.headers,
        environ_overrides=fresh_ip(),
    )
    assert_clean(op, response, allow={400, 422})


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=latin-1",
        "application/problem+json",
        "APPLICATION/JSON",
        "application/json; boundary=x; charset=utf-8; charset=utf-16",
    ],
)
@pytest.mark.parametrize("op", ops(lambda op: op.json_schema is not None))
def test_content_type_variants_parse_the_same_strict_way(shared, op, content_type):
    client, actor = shared
    # The bytes are always read as UTF-8 JSON, whatever charset is claimed.
    response = client.open(
        url_for(op),
        method=op.method,
        data=b'{"email": "caf\xe9"}',
        headers={**actor.headers, "Content-Type": content_type},
        environ_overrides=fresh_ip(),
    )
    assert_clean(op, response, allow={400, 415})
