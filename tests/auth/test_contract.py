"""What the OpenAPI document promises for auth inputs is what the server does.

Regressions of contract fuzzing (tests/contract): an address matching the
documented email pattern was refused, a well-formed but unknown email token
was a 400, a cursor of the documented type was refused.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.users import PASSWORD, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/verify-email"
RESET = "/api/v1/auth/password-reset"
SESSIONS = "/api/v1/auth/sessions"


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def _body_schema(spec: dict, path: str, method: str = "post") -> dict:
    ref = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def _email_pattern(client) -> re.Pattern[str]:
    email = _body_schema(_spec(client), REGISTER)["properties"]["email"]
    assert email["maxLength"] == 254
    return re.compile(email["pattern"])


ADMITTED = [
    "a@b.co",
    "  Ada.Lovelace@Example.COM \n",
    "x!#$%&'*+/=?^_`{|}~-@a-b.example.com",
    "l" * 64 + "@example.com",
    "a@" + "d" * 63 + ".example.com",
    "a@b.tests",
]
REFUSED = [
    "",
    "a@b",
    "a..b@example.com",
    ".a@example.com",
    "l" * 65 + "@example.com",
    "a@" + "d" * 64 + ".example.com",
    "a@b--c.example.com",
    "a@-b.example.com",
    "a@b.test",
    "a@b.LocalHost",
    "a@b.c0m",
    '"quoted"@example.com',
    "ümlaut@example.com",
    "a@example.com\x00",
]


@pytest.mark.parametrize("email", ADMITTED)
def test_an_address_the_pattern_admits_is_accepted(client, email):
    assert _email_pattern(client).search(email)
    response = client.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["user"]["email"] == email.strip().lower()


@pytest.mark.parametrize("email", REFUSED)
def test_an_address_the_pattern_refuses_is_422(client, email):
    assert not _email_pattern(client).search(email)
    response = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"


def test_generated_addresses_matching_the_pattern_are_never_refused(client):
    pattern = _email_pattern(client)

    @settings(max_examples=25, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.from_regex(pattern).filter(lambda email: len(email) <= 254))
    def check(email: str) -> None:
        # An unknown but well-formed address is a 401, never a validation 422.
        response = client.post(LOGIN, json={"email": email, "password": PASSWORD})
        assert response.status_code == 401, (email, response.get_json())

    check()


@pytest.mark.parametrize("path", [VERIFY, RESET])
def test_a_well_formed_unknown_token_is_403_as_documented(client, path):
    body = {"token": "x" * 43} | ({"new_password": PASSWORD} if path == RESET else {})
    response = client.post(path, json=body)
    assert response.status_code == 403
    assert response.get_json()["code"] == "email_token_invalid"
    responses = _spec(client)["paths"][path]["post"]["responses"]
    assert "403" in responses and "400" not in responses
    token = _body_schema(_spec(client), path)["properties"]["token"]
    assert token["pattern"] == "^[A-Za-z0-9_-]+$"
    malformed = client.post(path, json=body | {"token": "not a token!"})
    assert malformed.status_code == 422


def test_a_password_with_nul_is_refused_as_documented(client):
    schema = _body_schema(_spec(client), REGISTER)["properties"]["password"]
    assert schema["pattern"] == "^[^\\x00]*$"
    response = client.post(REGISTER, json={"email": "nul@example.com", "password": "abc\x00defgh"})
    assert response.status_code == 422


def test_any_cursor_matching_the_documented_pattern_is_a_page(client, register):
    headers = bearer(register(client)["access_token"])
    (cursor,) = [
        p["schema"]
        for p in _spec(client)["paths"][SESSIONS]["get"]["parameters"]
        if p["name"] == "cursor"
    ]
    pattern = re.compile(cursor["pattern"])
    for value in ("0_" + "0" * 32, "9" * 16 + "_" + "f" * 32, "1795447786123456_" + "a" * 32):
        assert pattern.search(value) and len(value) <= cursor["maxLength"]
        response = client.get(SESSIONS, headers=headers, query_string={"cursor": value})
        assert response.status_code == 200, response.get_json()
    for value in ("", "%%%", "1_" + "A" * 32, "1_" + "a" * 31, "1" * 17 + "_" + "a" * 32):
        assert not pattern.search(value)
        response = client.get(SESSIONS, headers=headers, query_string={"cursor": value})
        assert response.status_code == 422
        assert response.get_json()["code"] == "invalid_cursor"
