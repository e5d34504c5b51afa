"""Account erasure through the API and a real RQ worker, against real PostgreSQL, Redis, S3."""

from __future__ import annotations

import uuid

from redis import Redis
from sqlalchemy import func, select

from irisvue import create_app
from irisvue.extensions import db
from irisvue.models import (
    AuditEvent,
    Capture,
    ConsentRecord,
    EmailToken,
    ErasureTombstone,
    Job,
    PrivacyRequest,
    Session,
    User,
    UserKey,
)
from irisvue.privacy.retention import sweep
from irisvue.privacy.services import erase_account, subject_hash
from irisvue.storage import get_storage
from tests.support.jobs import all_redis_bytes
from tests.support.storage import objects_under, put_extra_object
from tests.support.users import PASSWORD, account_with_data

ERASURE = "/api/v1/privacy/erasure"


def _bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def _count(app, model, **where) -> int:
    with app.app_context():
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return db.session.scalar(stmt)


def test_erasure_end_to_end(
    app, client, register, consent_documents, run_jobs, raw_s3, stack, stack_env
):
    email = f"erase-{uuid.uuid4().hex[:8]}@example.com"
    body, headers = account_with_data(app, client, email)
    user_id = uuid.UUID(body["user"]["id"])
    other, other_headers = account_with_data(app, client)
    other_id = uuid.UUID(other["user"]["id"])
    put_extra_object(app, user_id)
    login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    second_device = _bearer(login.get_json())
    prefix = f"users/{user_id}/"
    assert len(objects_under(raw_s3, stack.s3_bucket, prefix)) == 3
    consents = _count(app, ConsentRecord, user_id=user_id)
    assert consents >= 1

    response = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    receipt = accepted["receipt_id"]
    assert len(receipt) >= 32
    assert accepted["status_url"] == f"{ERASURE}/{receipt}"

    # Every session died at once, before any worker ran.
    for bearer in (headers, second_device):
        me = client.get("/api/v1/auth/me", headers=bearer)
        assert me.status_code == 401
    pending = client.get(accepted["status_url"]).get_json()
    assert pending["status"] == "pending" and pending["completed_at"] is None

    assert run_jobs() >= 1

    status = client.get(accepted["status_url"])
    assert status.status_code == 200
    assert status.headers["Cache-Control"] == "no-store"
    done = status.get_json()
    assert done["status"] == "completed"
    assert done["completed_at"] is not None
    assert done["deleted"] == {"captures": 2, "consents": consents, "sessions": 2, "objects": 3}
    assert email not in status.get_data(as_text=True)
    assert str(user_id) not in status.get_data(as_text=True)

    assert objects_under(raw_s3, stack.s3_bucket, prefix) == []
    assert len(objects_under(raw_s3, stack.s3_bucket, f"users/{other_id}/")) == 2
    for model in (Capture, ConsentRecord, Session, EmailToken, UserKey, AuditEvent, Job):
        assert _count(app, model, user_id=user_id) == 0, model.__name__
    assert _count(app, User, id=user_id) == 0
    assert _count(app, Capture, user_id=other_id) == 2
    with app.app_context():
        # Security events remain, anonymous; jobs remain, carrying nothing about the user.
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) > 0
        [tombstone] = db.session.scalars(select(ErasureTombstone)).all()
        assert tombstone.subject_hash == subject_hash(user_id)
        assert len(tombstone.subject_hash) == 64 and str(user_id) not in tombstone.subject_hash
        assert tombstone.counts == done["deleted"]
        request = db.session.scalar(select(PrivacyRequest))
        assert request.user_id is None and request.completed_at is not None
        for job in db.session.scalars(select(Job)):
            assert str(user_id) not in str(job.args) + str(job.result)

    assert (
        client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).get_json()[
            "code"
        ]
        == "invalid_credentials"
    )
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert client.get("/api/v1/captures/", headers=other_headers).status_code == 200

    redis = Redis.from_url(stack_env["REDIS_URL"])
    try:
        everything = all_redis_bytes(redis)
    finally:
        redis.close()
    assert email.encode() not in everything


def test_rerunning_a_completed_erasure_is_a_no_op(
    app, client, register, consent_documents, run_jobs
):
    _, headers = account_with_data(app, client)
    receipt = client.post(ERASURE, json={"password": PASSWORD}, headers=headers).get_json()
    run_jobs()
    first = client.get(receipt["status_url"]).get_json()
    with app.app_context():
        request = db.session.scalar(select(PrivacyRequest))
        again = erase_account(request.id)
        assert again == first["deleted"]
        assert db.session.scalar(select(func.count()).select_from(ErasureTombstone)) == 1
    assert client.get(receipt["status_url"]).get_json() == first


def test_wrong_password_is_401_and_changes_nothing(app, client, register):
    body = register(client, password=PASSWORD)
    headers = _bearer(body)
    response = client.post(ERASURE, json={"password": "not-the-password"}, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_credentials"
    assert response.mimetype == "application/problem+json"
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert _count(app, PrivacyRequest) == 0
    assert _count(app, Job, kind="privacy.erase") == 0


def test_wrong_passwords_are_rate_limited(app, client, register):
    headers = _bearer(register(client, password=PASSWORD))
    codes = [
        client.post(ERASURE, json={"password": f"wrong-{n}"}, headers=headers).status_code
        for n in range(11)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429


def test_no_token_is_401(client):
    response = client.post(ERASURE, json={"password": PASSWORD})
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_missing"


def test_validation(client, register):
    headers = _bearer(register(client, password=PASSWORD))
    assert client.post(ERASURE, json={}, headers=headers).status_code == 422
    extra = client.post(ERASURE, json={"password": PASSWORD, "x": 1}, headers=headers)
    assert extra.status_code == 422


def test_twice_with_the_same_token_is_401(app, client, register):
    headers = _bearer(register(client, password=PASSWORD))
    first = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
    assert first.status_code == 202
    again = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
    assert again.status_code == 401
    assert again.get_json()["code"] in {"token_revoked", "account_disabled"}
    assert _count(app, PrivacyRequest) == 1
    assert _count(app, Job, kind="privacy.erase") == 1


def test_second_request_while_pending_returns_the_same_receipt(app, client, register, auth_headers):
    body = register(client, password=PASSWORD)
    first = client.post(ERASURE, json={"password": PASSWORD}, headers=_bearer(body))
    assert first.status_code == 202
    # A token minted after the first request (e.g. a session that raced it).
    with app.app_context():
        user = db.session.get(User, uuid.UUID(body["user"]["id"]))
        user.is_active = True
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
    second = client.post(ERASURE, json={"password": PASSWORD}, headers=auth_headers(user))
    assert second.status_code == 202
    assert second.get_json() == first.get_json()
    assert _count(app, PrivacyRequest) == 1
    assert _count(app, Job, kind="privacy.erase") == 1


def test_login_is_refused_while_erasure_is_pending(client, register):
    email = f"pending-{uuid.uuid4().hex[:8]}@example.com"
    body = register(client, email=email, password=PASSWORD)
    assert (
        client.post(ERASURE, json={"password": PASSWORD}, headers=_bearer(body)).status_code == 202
    )
    login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code in (401, 403)


def test_unknown_receipt_is_404(client):
    response = client.get(f"{ERASURE}/{'x' * 32}")
    assert response.status_code == 404
    assert response.get_json()["code"] == "erasure_not_found"


def test_embedded_stack_erases_inline_on_sqlite(embedded_env, register):
    """No Redis, no S3, SQLite: the job runs in the request and the receipt is final at once."""
    import flask_migrate

    application = create_app()
    application.config["TESTING"] = True
    with application.app_context():
        flask_migrate.upgrade()
    try:
        client = application.test_client()
        email = f"embedded-{uuid.uuid4().hex[:8]}@example.com"
        body = register(client, email=email, password=PASSWORD)
        user_id = uuid.UUID(body["user"]["id"])
        key = put_extra_object(application, user_id)

        response = client.post(ERASURE, json={"password": PASSWORD}, headers=_bearer(body))
        assert response.status_code == 202, response.get_json()
        status = client.get(response.get_json()["status_url"]).get_json()
        assert status["status"] == "completed"
        assert status["deleted"] == {"captures": 0, "consents": 0, "sessions": 1, "objects": 1}
        with application.app_context():
            assert get_storage().stat(key) is None
            assert db.session.get(User, user_id) is None
            assert db.session.scalar(select(func.count()).select_from(ErasureTombstone)) == 1
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 401
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def test_sweep_between_request_and_job_keeps_the_session_count(app, client, register, run_jobs):
    body = register(client, password=PASSWORD)
    response = client.post(ERASURE, json={"password": PASSWORD}, headers=_bearer(body))
    with app.app_context():
        assert sweep()["sessions"] == 1  # the revoked session row is purged before the job
    run_jobs()
    status = client.get(response.get_json()["status_url"]).get_json()
    assert (status["status"], status["deleted"]["sessions"]) == ("completed", 1)
