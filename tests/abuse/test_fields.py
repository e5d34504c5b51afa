"""Injection strings in every string field, query parameter and path parameter.

Each operation gets a live, verified, consenting user, so a value that passes
validation reaches the services and the database. Whatever happens, the answer
is a documented success or a 4xx problem+json, and the database still works.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import text

from irisvue.extensions import db
from tests.support.openapi import Operation, assert_clean, baseline, ops, string_fields, url_for
from tests.support.users import fresh_ip

INJECTIONS = [
    "' OR '1'='1' --",
    "'; DROP TABLE users; --",
    "x' UNION SELECT email, password_hash FROM users --",
    "1; SELECT pg_sleep(0)",
    '{"$gt": ""}',
    '{"$where": "sleep(0)"}',
    "admin'||'",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}%s%n%x{0}",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "\\\\?\\C:\\Windows",
    "\u202eevil\u200b\ufeff\U0001f600",
    "x" * 4096,
]
# Legal in JSON, illegal in a header or a log line if handled carelessly.
HEADER_INJECTIONS = ["a\r\nSet-Cookie: evil=1", "a\nX-Injected: 1", "a\rb", "\x1b[2J\x1b[31m"]
# Not strings at all where a string is expected (NoSQL operator objects).
WRONG_TYPES = [{"$gt": ""}, {"$ne": None}, ["a"], 1, None, True]


def _tables_intact(app) -> None:
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM users")).scalar_one() >= 1
        db.session.remove()


def _send(client, op: Operation, actor, **kwargs):
    return client.open(
        kwargs.pop("url", None) or url_for(op),
        method=op.method,
        headers=actor.headers,
        environ_overrides=fresh_ip(),
        **kwargs,
    )


@pytest.mark.parametrize("op", ops(lambda op: bool(string_fields(op.json_schema))))
def test_injection_strings_in_every_body_field(app, client, actor, op):
    schema = op.json_schema
    for field in string_fields(schema):
        for value in [*INJECTIONS, *HEADER_INJECTIONS, *WRONG_TYPES]:
            body = {**baseline(schema), field: value}
            assert_clean(op, _send(client, op, actor, json=body))
    _tables_intact(app)


@pytest.mark.parametrize("op", ops(lambda op: bool(op.params_in("query"))))
def test_injection_strings_in_every_query_parameter(app, client, actor, op):
    hostile = [
        *INJECTIONS,
        *HEADER_INJECTIONS,
        "-1",
        "0",
        "1e309",
        "99999999999999999999999999",
        "\uff11",  # FULLWIDTH DIGIT ONE: int() accepts it
        "a" * 20000,
    ]
    for param in op.params_in("query"):
        for value in hostile:
            url = f"{url_for(op)}?{param['name']}={quote(value, safe='')}"
            assert_clean(op, _send(client, op, actor, url=url))
        # The same parameter twice, and with an empty value.
        url = f"{url_for(op)}?{param['name']}=1&{param['name']}=2&{param['name']}="
        assert_clean(op, _send(client, op, actor, url=url))
    _tables_intact(app)


PATH_VALUES = [
    "..%2F..%2Fetc",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e",
    "..",
    "%00",
    "x%00y",
    "%ff%fe",
    "%c0%ae%c0%ae",
    "%0d%0aSet-Cookie:%20a=b",
    "00000000-0000-0000-0000-000000000000",
    "00000000-0000-0000-0000-000000000000%00",
    "a" * 3000,
    "%E2%80%AE",
    "'%20OR%20'1'='1",
]


@pytest.mark.parametrize("op", ops(lambda op: bool(op.params_in("path"))))
def test_hostile_path_parameters(app, client, actor, op):
    for param in op.params_in("path"):
        for value in PATH_VALUES:
            url = url_for(op, **{param["name"]: value})
            status = assert_clean(op, _send(client, op, actor, url=url))
            if value != "00000000-0000-0000-0000-000000000000":
                assert status >= 400, (op.id, value, status)
    _tables_intact(app)


@pytest.mark.parametrize("op", ops())
def test_header_values_with_nul_cr_lf_are_refused(shared, op):
    client, actor = shared
    for name in ("User-Agent", "X-Request-ID", "Authorization", "X-Anything"):
        for value in ("a\x00b", "a\r\nSet-Cookie: x=1", "a\nb", "a\rb"):
            headers = {**actor.headers, name: value}
            response = client.open(
                url_for(op),
                method=op.method,
                environ_overrides={"HTTP_" + name.upper().replace("-", "_"): value},
                headers={k: v for k, v in headers.items() if k != name},
            )
            assert_clean(op, response, allow={400})
            assert response.get_json()["code"] == "invalid_header"
            assert "Set-Cookie" not in response.headers


def _alg_none_token() -> str:
    import base64
    import json

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"sub": "00000000-0000-0000-0000-000000000000", "type": "access", "sid": "x"}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_AUTHORIZATION = [
    "Bearer",
    "Bearer ",
    "Bearer " + "a" * 8000,
    "Bearer a.b.c",
    "Bearer " + _alg_none_token(),
    "Bearer \u00ff\u00fe.\u00ff.\u00ff",
    "Basic YWRtaW46YWRtaW4=",
    "bearer ' OR 1=1 --",
]


@pytest.mark.parametrize("op", ops(lambda op: "security" in op.spec))
def test_garbage_bearer_tokens_are_401(shared, op):
    client, _ = shared
    for value in BAD_AUTHORIZATION:
        response = client.open(url_for(op), method=op.method, headers={"Authorization": value})
        assert_clean(op, response, allow={401, 415, 422})
