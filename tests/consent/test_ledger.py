"""Recording consent: POST /, the current state and the history, as the user sees them."""

from __future__ import annotations

import pytest

from irisvue import create_app
from irisvue.consent.chain import GENESIS_HASH
from irisvue.extensions import db
from tests.support.consent import CONSENTS, record

HISTORY = CONSENTS + "history"


def _doc(documents, consent_type, jurisdiction):
    return next(d for d in documents if (d.type, d.jurisdiction) == (consent_type, jurisdiction))


def test_grant_is_stamped_by_the_server(client, member, consent_documents):
    _, headers = member
    response = client.post(
        CONSENTS,
        json={
            "consent_type": "biometric_capture",
            "jurisdiction": "bipa",
            "granted": True,
            "document_version": 1,
        },
        headers={**headers, "User-Agent": "IrisVue-iOS/1.0 " + "x" * 400},
    )
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["seq"] == 1
    assert body["granted"] is True
    assert body["granted_at"] == body["recorded_at"]
    assert body["withdrawn_at"] is None
    assert body["ip_address"] == "127.0.0.1"
    assert body["user_agent"].startswith("IrisVue-iOS/1.0 ")
    assert len(body["user_agent"]) == 256
    assert body["document_sha256"] == _doc(consent_documents, "biometric_capture", "bipa").sha256
    assert body["prev_hash"] == GENESIS_HASH
    assert len(body["record_hash"]) == 64
    assert body["job"] is None


def test_state_shows_the_latest_record_per_type(client, member):
    _, headers = member
    assert record(client, headers, "data_processing").status_code == 201
    assert record(client, headers, "marketing", granted=True).status_code == 201
    assert record(client, headers, "marketing", granted=False).status_code == 201

    response = client.get(CONSENTS, headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    state = {item["consent_type"]: item for item in response.get_json()["items"]}
    assert set(state) == {"biometric_capture", "data_processing", "marketing"}
    assert state["biometric_capture"] == {
        "consent_type": "biometric_capture",
        "granted": False,
        "record": None,
    }
    assert state["data_processing"]["granted"] is True
    assert state["marketing"]["granted"] is False
    assert state["marketing"]["record"]["seq"] == 3
    assert state["marketing"]["record"]["withdrawn_at"]


def test_history_lists_every_record_oldest_first(client, member):
    _, headers = member
    for consent_type, granted in [
        ("data_processing", True),
        ("marketing", True),
        ("marketing", False),
    ]:
        assert record(client, headers, consent_type, granted=granted).status_code == 201
    response = client.get(HISTORY, headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["next_cursor"] is None
    assert "verification" not in body
    items = body["items"]
    assert [(r["seq"], r["consent_type"], r["granted"]) for r in items] == [
        (1, "data_processing", True),
        (2, "marketing", True),
        (3, "marketing", False),
    ]
    assert [r["prev_hash"] for r in items[1:]] == [r["record_hash"] for r in items[:-1]]


def test_stale_document_version_is_409(client, member):
    _, headers = member
    for version in (2, 99):
        response = record(client, headers, version=version)
        assert response.status_code == 409
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["code"] == "stale_document"
        assert "current version is 1" in body["errors"]["document_version"][0]
    assert client.get(HISTORY, headers=headers).get_json()["items"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consent_type": "retina_scan"}, "consent_type"),
        ({"jurisdiction": "lgpd"}, "jurisdiction"),
        ({"granted": "yes"}, "granted"),
        ({"granted": 1}, "granted"),
        ({"document_version": "1"}, "document_version"),
        ({"document_version": 0}, "document_version"),
        ({"locale": "english"}, "locale"),
        ({"ip_address": "203.0.113.7"}, "ip_address"),  # server-stamped: never from the client
        ({"record_hash": "0" * 64}, "record_hash"),
    ],
)
def test_invalid_or_unknown_fields_are_422(client, member, change, field):
    _, headers = member
    body = {
        "consent_type": "marketing",
        "jurisdiction": "gdpr",
        "granted": True,
        "document_version": 1,
        **change,
    }
    response = client.post(CONSENTS, json=body, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_missing_fields_are_422(client, member):
    _, headers = member
    response = client.post(CONSENTS, json={}, headers=headers)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {
        "consent_type",
        "jurisdiction",
        "granted",
        "document_version",
    }


def test_locale_without_a_published_text_is_422(client, member):
    _, headers = member
    response = record(client, headers, locale="fr")
    assert response.status_code == 422
    assert response.get_json()["code"] == "unknown_document"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", CONSENTS),
        ("post", CONSENTS),
        ("get", HISTORY),
        ("post", CONSENTS + "marketing/withdraw"),
    ],
)
def test_no_token_is_401(client, consent_documents, method, path):
    response = getattr(client, method)(path, json={} if method == "post" else None)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "token_missing"


def test_another_users_records_are_never_visible(client, make_user, auth_headers, member):
    _, headers = member
    assert record(client, headers, "data_processing").status_code == 201
    other = auth_headers(make_user())
    assert client.get(HISTORY, headers=other).get_json()["items"] == []
    state = client.get(CONSENTS, headers=other).get_json()["items"]
    assert all(item["record"] is None and not item["granted"] for item in state)
    # Nor does the other user's chain start anywhere but at the beginning.
    assert record(client, other, "data_processing").get_json()["seq"] == 1


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(client, member):
    _, headers = member
    response = client.post(
        CONSENTS,
        json={
            "consent_type": "marketing",
            "jurisdiction": "gdpr",
            "granted": True,
            "document_version": 1,
        },
        headers={**headers, "X-Forwarded-For": "198.51.100.23"},
    )
    assert response.get_json()["ip_address"] == "127.0.0.1"


def test_forwarded_for_is_honoured_for_a_trusted_proxy(app, member):
    _, headers = member
    behind_proxy = create_app({"TRUSTED_PROXIES": 1})
    try:
        response = behind_proxy.test_client().post(
            CONSENTS,
            json={
                "consent_type": "marketing",
                "jurisdiction": "gdpr",
                "granted": True,
                "document_version": 1,
            },
            headers={**headers, "X-Forwarded-For": "203.0.113.50, 198.51.100.23"},
        )
    finally:
        with behind_proxy.app_context():
            db.engine.dispose()
    assert response.status_code == 201, response.get_json()
    # One trusted hop: the address that proxy saw, not what the client claimed.
    assert response.get_json()["ip_address"] == "198.51.100.23"
