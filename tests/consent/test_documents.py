"""Consent texts: the public documents endpoint and the `flask consent load-documents` loader."""

from __future__ import annotations

import hashlib
import shutil

from sqlalchemy import func, select

from irisvue.consent.documents import TEXTS_DIR
from irisvue.extensions import db
from irisvue.models import ConsentDocument
from tests.support.consent import record

DOCUMENTS = "/api/v1/consents/documents"
TYPES = {"biometric_capture", "data_processing", "marketing"}
JURISDICTIONS = {"gdpr", "bipa", "ccpa", "generic"}


def _load(app, *args: str):
    return app.test_cli_runner().invoke(args=["consent", "load-documents", *args])


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsentDocument))


def test_documents_are_public_and_cover_every_type_and_jurisdiction(client, consent_documents):
    response = client.get(DOCUMENTS)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    items = response.get_json()["items"]
    assert {(d["type"], d["jurisdiction"]) for d in items} == {
        (t, j) for t in TYPES for j in JURISDICTIONS
    }
    for document in items:
        assert document["version"] == 1
        assert document["sha256"] == hashlib.sha256(document["text"].encode()).hexdigest()
        assert document["published_at"]
        assert "iris" in document["text"].lower() or document["type"] != "biometric_capture"


def test_documents_filter_by_type_and_jurisdiction(client, consent_documents):
    response = client.get(DOCUMENTS, query_string={"type": "marketing", "jurisdiction": "ccpa"})
    items = response.get_json()["items"]
    assert [(d["type"], d["jurisdiction"]) for d in items] == [("marketing", "ccpa")]
    assert client.get(DOCUMENTS, query_string={"locale": "fr"}).get_json()["items"] == []


def test_documents_reject_unknown_type(client, consent_documents):
    response = client.get(DOCUMENTS, query_string={"type": "retina"})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "type" in response.get_json()["errors"]


def test_bipa_biometric_text_states_purpose_and_retention_schedule(client, consent_documents):
    items = client.get(
        DOCUMENTS, query_string={"type": "biometric_capture", "jurisdiction": "bipa"}
    ).get_json()["items"]
    text = items[0]["text"]
    for required in (
        "740 ILCS 14/15(a)",
        "3 years after your last interaction",
        "withdraw",
        "purpose",
        "written release",
        "encrypted",
    ):
        assert required in text, required


def test_loader_is_idempotent(app):
    first = _load(app)
    assert first.exit_code == 0, first.output
    assert "12 published, 0 unchanged" in first.output
    with app.app_context():
        before = {
            d.id: (d.sha256, d.published_at) for d in db.session.scalars(select(ConsentDocument))
        }

    again = _load(app)
    assert again.exit_code == 0, again.output
    assert "0 published, 12 unchanged" in again.output
    with app.app_context():
        after = {
            d.id: (d.sha256, d.published_at) for d in db.session.scalars(select(ConsentDocument))
        }
    assert after == before


def test_loader_refuses_an_altered_published_version(app, client, tmp_path):
    texts = tmp_path / "texts"
    shutil.copytree(TEXTS_DIR, texts)
    assert _load(app, "--dir", str(texts)).exit_code == 0
    published = client.get(DOCUMENTS, query_string={"type": "marketing", "jurisdiction": "gdpr"})
    original = published.get_json()["items"][0]

    edited = texts / "marketing.gdpr.en.v1.md"
    edited.write_text(edited.read_text() + "\nWe may also send you text messages.\n")
    (texts / "data_processing.gdpr.en.v2.md").write_text("# A new version\n\nNew text.\n")
    refused = _load(app, "--dir", str(texts))

    assert refused.exit_code != 0
    assert "marketing.gdpr.en.v1.md" in refused.output
    assert "next version" in refused.output
    # All or nothing: the new v2 file was not published either.
    assert _count(app) == 12
    still = client.get(DOCUMENTS, query_string={"type": "marketing", "jurisdiction": "gdpr"})
    assert still.get_json()["items"][0] == original


def test_loader_rejects_misnamed_files(app, tmp_path):
    (tmp_path / "biometric.gdpr.en.v1.md").write_text("text\n")
    result = _load(app, "--dir", str(tmp_path))
    assert result.exit_code != 0
    assert "biometric.gdpr.en.v1.md" in result.output
    assert _count(app) == 0


def test_a_new_version_becomes_current_and_the_old_one_stale(
    app, client, make_user, auth_headers, tmp_path
):
    texts = tmp_path / "texts"
    shutil.copytree(TEXTS_DIR, texts)
    assert _load(app, "--dir", str(texts)).exit_code == 0
    headers = auth_headers(make_user())
    assert record(client, headers, "marketing", "gdpr", version=1).status_code == 201

    (texts / "marketing.gdpr.en.v2.md").write_text("# News by email\n\nVersion two.\n")
    loaded = _load(app, "--dir", str(texts))
    assert "published marketing.gdpr.en.v2.md" in loaded.output

    items = client.get(
        DOCUMENTS, query_string={"type": "marketing", "jurisdiction": "gdpr"}
    ).get_json()["items"]
    assert [(d["version"], d["text"]) for d in items] == [(2, "# News by email\n\nVersion two.\n")]
    stale = record(client, headers, "marketing", "gdpr", version=1)
    assert stale.status_code == 409
    assert stale.get_json()["code"] == "stale_document"
    fresh = record(client, headers, "marketing", "gdpr", version=2)
    assert fresh.status_code == 201
    assert fresh.get_json()["document_sha256"] == items[0]["sha256"]
    # The old record still pins the text it was given under.
    history = client.get("/api/v1/consents/history", headers=headers).get_json()["items"]
    assert [r["document_version"] for r in history] == [1, 2]
