"""GET /history pages: bounded, oldest first, and a cursor walk visits each record once."""

from __future__ import annotations

import pytest

from irisvue.consent.schemas import encode_cursor
from irisvue.consent.services import record_consent
from tests.support.consent import CONSENTS, record

HISTORY = CONSENTS + "history"
TOTAL = 250


@pytest.fixture
def long_history(app, member):
    """250 records appended through the service (HTTP would only make this slower)."""
    user, headers = member
    with app.app_context():
        for n in range(TOTAL):
            record_consent(
                str(user.id),
                consent_type=("data_processing", "marketing")[n % 2],
                jurisdiction="generic",
                granted=n % 3 != 0,
                document_version=1,
                ip_address="127.0.0.1",
            )
    return user, headers


def test_cursor_walks_every_record_exactly_once(client, long_history):
    _, headers = long_history
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = client.get(HISTORY, query_string=query, headers=headers)
        assert response.status_code == 200
        body = response.get_json()
        assert len(body["items"]) <= 100
        seen.extend(item["seq"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the cursor does not advance"
    assert pages == 3
    assert seen == list(range(1, TOTAL + 1))

    # The default page is 50; verification walks the whole chain, not the page.
    body = client.get(HISTORY, query_string={"verify": "true"}, headers=headers).get_json()
    assert len(body["items"]) == 50
    assert body["next_cursor"]
    assert body["verification"]["intact"] is True
    assert body["verification"]["checked"] == TOTAL


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"cursor": "!!"},
        {"cursor": "c2VxOi0x"},
        {"cursor": encode_cursor(1) + "AAAA"},
    ],
)
def test_bad_paging_arguments_are_422(client, member, query):
    _, headers = member
    response = client.get(HISTORY, query_string=query, headers=headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) <= {"limit", "cursor"}


def test_a_cursor_reveals_nothing_of_another_user(client, make_user, auth_headers, member):
    _, headers = member
    for _ in range(3):
        assert record(client, headers).status_code == 201
    cursor = client.get(HISTORY, query_string={"limit": 1}, headers=headers).get_json()[
        "next_cursor"
    ]
    assert cursor
    other = auth_headers(make_user())
    body = client.get(HISTORY, query_string={"cursor": cursor}, headers=other).get_json()
    assert body == {"items": [], "next_cursor": None}
