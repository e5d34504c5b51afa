"""What the OpenAPI document promises for consent inputs is what the server does.

Regressions of contract fuzzing (tests/contract): a history cursor of the
documented type was refused, and a decision in a locale the schema admitted
but no text is published in was refused.
"""

from __future__ import annotations

import re

from tests.support.consent import CONSENTS, record

HISTORY = f"{CONSENTS}history"


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def test_any_cursor_matching_the_documented_pattern_is_a_page(client, member):
    _, headers = member
    for _ in range(3):
        assert record(client, headers).status_code == 201
    (cursor,) = [
        p["schema"] for p in _spec(client)["paths"][HISTORY]["get"]["parameters"]
        if p["name"] == "cursor"
    ]  # fmt: skip
    pattern = re.compile(cursor["pattern"])
    first = client.get(HISTORY, headers=headers, query_string={"limit": 1}).get_json()
    assert pattern.search(first["next_cursor"])
    for value, count in (("0", 3), (first["next_cursor"], 2), ("9" * 12, 0)):
        assert pattern.search(value) and len(value) <= cursor["maxLength"]
        response = client.get(HISTORY, headers=headers, query_string={"cursor": value})
        assert response.status_code == 200, response.get_json()
        assert len(response.get_json()["items"]) == count
    for value in ("", "-1", "1" * 13, "c2VxOjE", "1\n"):
        assert not pattern.fullmatch(value)
        response = client.get(HISTORY, headers=headers, query_string={"cursor": value})
        assert response.status_code == 422
        assert set(response.get_json()["errors"]) == {"cursor"}


def test_the_locales_a_decision_may_name_are_the_published_ones(client, member):
    _, headers = member
    create = _spec(client)["components"]["schemas"]["ConsentCreate"]["properties"]["locale"]
    assert create["enum"] == ["en"]
    assert record(client, headers, locale="en").status_code == 201
    unpublished = record(client, headers, locale="lj")
    assert unpublished.status_code == 422
    assert unpublished.get_json()["code"] == "unknown_document"
