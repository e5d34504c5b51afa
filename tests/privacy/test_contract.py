"""What the OpenAPI document promises for privacy inputs is what the server does.

Regressions of contract fuzzing (tests/contract): identifiers documented as
any string (a NUL in the path or query is refused by the request guard), a
password documented as any text (NUL is refused).
"""

from __future__ import annotations

import re
import uuid

ERASURE = "/api/v1/privacy/erasure"


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def test_the_receipt_id_is_documented_with_its_pattern(client):
    operation = _spec(client)["paths"][f"{ERASURE}/{{receipt_id}}"]["get"]
    (receipt,) = [p for p in operation["parameters"] if p["name"] == "receipt_id"]
    pattern = re.compile(receipt["schema"]["pattern"])
    assert pattern.search("A" * 32) and not pattern.search("a b") and not pattern.search("")
    unknown = client.get(f"{ERASURE}/{'A' * 32}")
    assert unknown.status_code == 404
    assert unknown.get_json()["code"] == "erasure_not_found"


def test_the_download_token_is_documented_with_its_pattern(client):
    path = "/api/v1/privacy/export/{job_id}/download"
    (token,) = _spec(client)["paths"][path]["get"]["parameters"]
    pattern = re.compile(token["schema"]["pattern"])
    url = f"/api/v1/privacy/export/{uuid.uuid4()}/download"
    forged = "eyJhIjoxfQ.ZZZZZZ.c2lnbmF0dXJl"
    assert pattern.search(forged)
    assert client.get(url, query_string={"token": forged}).status_code == 401
    assert not pattern.search("not a token")
    malformed = client.get(url, query_string={"token": "not a token"})
    assert malformed.status_code == 422
    assert set(malformed.get_json()["errors"]) == {"token"}


def test_the_erasure_password_excludes_nul_as_documented(client, make_user, auth_headers):
    # The body is documented as oneOf password | ID token; the password shape:
    schema = _spec(client)["components"]["schemas"]["PasswordProof"]["properties"]["password"]
    assert schema["pattern"] == "^[^\\x00]*$"
    headers = auth_headers(make_user())
    response = client.post(ERASURE, json={"password": "pass\x00word"}, headers=headers)
    assert response.status_code == 422
