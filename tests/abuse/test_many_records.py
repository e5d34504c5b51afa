"""10,000 consent records for one user: every page bounded, the cursor walk exact.

The rows are inserted in one bulk statement, each with the hash its service
would have computed (chain.compute_hash over the same fields), so the ledger
trigger (it refuses UPDATE/DELETE, not INSERT) and the chain verification
both see a real ledger.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert

from irisvue.consent.anchor import pin_head
from irisvue.consent.chain import GENESIS_HASH, compute_hash
from irisvue.consent.schemas import MAX_PAGE
from irisvue.extensions import db
from irisvue.models import ConsentRecord
from irisvue.models.base import utcnow

TOTAL = 10_000
HISTORY = "/api/v1/consents/history"

pytestmark = pytest.mark.slow


@pytest.fixture
def crowded(app, make_user, auth_headers, consent_documents):
    user = make_user()
    document = next(d for d in consent_documents if d.type == "data_processing")
    start = utcnow() - timedelta(days=1)
    rows, prev = [], GENESIS_HASH
    for seq in range(1, TOTAL + 1):
        granted = seq % 2 == 1
        at = start + timedelta(milliseconds=seq)
        record = ConsentRecord(
            id=uuid.uuid4(),
            user_id=user.id,
            seq=seq,
            consent_type="data_processing",
            jurisdiction=document.jurisdiction,
            locale="en",
            granted=granted,
            created_at=at,
            granted_at=at if granted else None,
            withdrawn_at=None if granted else at,
            ip_address="127.0.0.1",
            user_agent="pytest",
            document_version=document.version,
            document_sha256=document.sha256,
            prev_hash=prev,
        )
        record.record_hash = prev = compute_hash(record)
        rows.append({c.key: getattr(record, c.key) for c in ConsentRecord.__table__.columns})
    with app.app_context():
        db.session.execute(insert(ConsentRecord), rows)
        pin_head(record)  # the anchor appends keep (bulk inserts bypass appends)
        db.session.commit()
    return user, auth_headers(user)


def test_ten_thousand_records_page_bounded_and_walk_exactly_once(client, crowded):
    _, headers = crowded
    # `limit` is capped: asking for more is a 422, not a 10,000-item page.
    for limit in (MAX_PAGE + 1, TOTAL, 10**12):
        response = client.get(HISTORY, query_string={"limit": limit}, headers=headers)
        assert response.status_code == 422, limit
        assert response.mimetype == "application/problem+json"
    # The default page is bounded too.
    default = client.get(HISTORY, headers=headers).get_json()
    assert 0 < len(default["items"]) <= MAX_PAGE and default["next_cursor"]

    seen: list[int] = []
    cursor, pages = None, 0
    while True:
        query = {"limit": MAX_PAGE, **({"cursor": cursor} if cursor else {})}
        response = client.get(HISTORY, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        items = response.get_json()["items"]
        assert 0 < len(items) <= MAX_PAGE
        assert len(response.get_data()) < 200 * 1024  # a page stays small
        seen.extend(item["seq"] for item in items)
        pages += 1
        cursor = response.get_json()["next_cursor"]
        if cursor is None:
            break
        assert pages <= TOTAL // MAX_PAGE, "the cursor does not advance"
    assert pages == -(-TOTAL // MAX_PAGE)
    assert seen == list(range(1, TOTAL + 1))  # each record once, in order

    # Verification walks all 10,000 (streamed), the page stays bounded.
    body = client.get(HISTORY, query_string={"verify": "true"}, headers=headers).get_json()
    assert body["verification"] == {**body["verification"], "intact": True, "checked": TOTAL}
    assert len(body["items"]) <= MAX_PAGE


def test_state_of_a_long_ledger_is_one_item_per_type(client, crowded):
    _, headers = crowded
    response = client.get("/api/v1/consents/", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    items = body["items"] if isinstance(body, dict) else body
    assert len(items) <= 3  # one current state per consent type, not one per record
