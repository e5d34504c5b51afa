"""The embedded stack (SQLite, local objects, inline jobs) and the OpenAPI description."""

from __future__ import annotations

import flask_migrate
import pytest

from irisvue import create_app
from irisvue.auth.sessions import open_session
from irisvue.consent.documents import load_documents
from irisvue.extensions import db
from irisvue.models import User
from tests.support.consent import grant_biometric_consent
from tests.support.images import jpeg_with_gps, pixels
from tests.support.uploads import CAPTURES, upload


@pytest.mark.slow
def test_capture_lifecycle_on_the_embedded_stack(monkeypatch, tmp_path, stack_env):
    for name in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IRISVUE_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    with app.app_context():
        flask_migrate.upgrade()
        load_documents()
        user = User(email="embedded@example.com", is_verified=True)
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    with app.test_request_context(headers={"User-Agent": "pytest"}):
        _, pair = open_session(db.session.get(User, user_id))
        db.session.commit()
    headers = {"Authorization": f"Bearer {pair.access_token}"}
    client = app.test_client()
    grant_biometric_consent(client, headers)
    original = jpeg_with_gps()

    created = [upload(client, headers, original) for _ in range(3)]

    assert [r.status_code for r in created] == [201, 201, 201]
    ids = [r.get_json()["id"] for r in created]
    page = client.get(CAPTURES, query_string={"limit": 2}, headers=headers).get_json()
    rest = client.get(
        CAPTURES, query_string={"limit": 2, "cursor": page["next_cursor"]}, headers=headers
    ).get_json()
    assert [c["id"] for c in page["items"] + rest["items"]] == ids[::-1]
    stored = client.get(f"{CAPTURES}{ids[0]}/content", headers=headers).data
    assert pixels(stored) == pixels(original)
    objects = tmp_path / "objects" / "users" / str(user_id) / "captures"
    files = sorted(p.name for p in objects.iterdir())
    assert files == sorted(ids)
    assert all(b"JFIF" not in (objects / name).read_bytes() for name in files)
    assert client.delete(f"{CAPTURES}{ids[0]}", headers=headers).status_code == 204

    # Without Redis the destruction job runs inline, in the request.
    withdrawn = client.post("/api/v1/consents/biometric_capture/withdraw", headers=headers)
    assert withdrawn.status_code == 202
    assert withdrawn.get_json()["job"]["status"] in {"queued", "finished"}
    assert client.get(CAPTURES, headers=headers).get_json()["items"] == []
    assert not objects.exists() or not any(objects.iterdir())
    with app.app_context():
        db.engine.dispose()


def test_openapi_documents_the_upload(client):
    spec = client.get("/api/openapi.json").get_json()
    upload_op = spec["paths"]["/api/v1/captures/"]["post"]
    body = upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"] == {"type": "string", "format": "binary"}
    assert body["required"] == ["file"]
    for status in ("403", "413", "415", "422", "503"):
        content = upload_op["responses"][status]["content"]["application/problem+json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert upload_op["security"] == [{"bearerAuth": []}]
    assert set(spec["components"]["schemas"]["Capture"]["properties"]) == {
        "id",
        "content_type",
        "size",
        "sha256",
        "created_at",
    }
    content_op = spec["paths"]["/api/v1/captures/{capture_id}/content"]["get"]
    assert set(content_op["responses"]["200"]["content"]) == {"image/jpeg", "image/png"}
    for status in ("404", "410", "500"):
        assert status in content_op["responses"]
    listing = spec["paths"]["/api/v1/captures/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "cursor"}
    assert "404" in spec["paths"]["/api/v1/captures/{capture_id}"]["delete"]["responses"]
