"""The guards' boundaries, and that the spec-driven tests really cover every route."""

from __future__ import annotations

import json

import pytest

from irisvue.guards import MAX_JSON_DEPTH, BadJsonError, BadTextError, parse_json
from tests.support.openapi import OPERATIONS, SPEC

# Routes that are not API operations (and so are not in the OpenAPI document).
UNDOCUMENTED = {"/static/<path:filename>", "/api/docs", "/api/docs/assets/<path:filename>"}
UNDOCUMENTED |= {"/api/openapi.json", "/metrics"}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_limit_is_exact():
    assert parse_json(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(BadJsonError):
        parse_json(nested(MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        ({"a": "x\x00"}, {"a"}),
        ({"a": {"b": ["ok", "\ud800"]}}, {"a.b.1"}),
        ({"a\x00": 1}, {"a\\u0000"}),
        (["\x00", "ok", "\udfff"], {"0", "2"}),
        ("\x00", {"_json"}),
    ],
)
def test_unstorable_text_is_named_by_its_path(document, errors):
    with pytest.raises(BadTextError) as raised:
        parse_json(json.dumps(document).encode())
    assert set(raised.value.errors) == errors


@pytest.mark.parametrize(
    "document",
    ['{"a": "é\\u00e9 \\ud83d\\ude00 \\u2028"}', '{"n": 1.5e308, "m": -0}', '"' + "x" * 1000 + '"'],
)
def test_legal_json_passes(document):
    assert parse_json(document.encode()) == json.loads(document)


def test_every_api_route_is_an_operation_of_the_spec(app):
    """So the parametrised abuse tests cover every route, including future ones."""
    documented = {op.path for op in OPERATIONS}
    served = app.test_client().get("/api/openapi.json").get_json() == SPEC
    assert served, "the collection-time spec differs from the one the test app serves"
    for rule in app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED:
            continue
        template = rule.rule
        for argument in rule.arguments:
            template = template.replace(
                next(p for p in template.split("/") if p.endswith(f":{argument}>")),
                "{" + argument + "}",
            )
        assert template in documented, rule.rule
        methods = {op.method for op in OPERATIONS if op.path == template}
        assert rule.methods - {"HEAD", "OPTIONS"} <= methods, rule.rule
