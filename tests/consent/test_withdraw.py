"""Withdrawal: one call; withdrawing biometric_capture queues destruction through the outbox."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from irisvue.captures.destruction import destroy_biometrics
from irisvue.extensions import db
from irisvue.models import ConsentRecord, Job
from tests.support.consent import CONSENTS, record


def _withdraw(client, headers, consent_type, **body):
    return client.post(f"{CONSENTS}{consent_type}/withdraw", json=body or None, headers=headers)


def _job(app, job_id: str) -> Job | None:
    with app.app_context():
        job = db.session.get(Job, uuid.UUID(job_id))
        if job is not None:
            db.session.expunge(job)
        return job


def test_withdrawing_marketing_appends_a_record(client, member):
    _, headers = member
    assert record(client, headers, "marketing", "ccpa").status_code == 201

    response = _withdraw(client, headers, "marketing")

    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert (body["seq"], body["granted"], body["jurisdiction"]) == (2, False, "ccpa")
    assert body["withdrawn_at"] == body["recorded_at"]
    assert body["granted_at"] is None
    assert body["job"] is None
    state = {
        i["consent_type"]: i for i in client.get(CONSENTS, headers=headers).get_json()["items"]
    }
    assert state["marketing"]["granted"] is False


def test_withdrawing_biometric_capture_queues_destruction(app, client, member, run_jobs):
    user, headers = member
    granted = record(client, headers, "biometric_capture", "bipa")
    assert granted.status_code == 201

    response = _withdraw(client, headers, "biometric_capture")

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert (body["consent_type"], body["granted"], body["jurisdiction"]) == (
        "biometric_capture",
        False,
        "bipa",
    )
    assert body["job"]["kind"] == "biometrics.destroy"
    assert body["job"]["status"] == "queued"
    job = _job(app, body["job"]["id"])
    assert job is not None
    assert (job.kind, job.user_id, job.queue) == ("biometrics.destroy", user.id, "default")
    assert job.args == {"consent_record_id": body["id"]}  # ids only; the owner is user_id

    assert run_jobs() >= 1  # a real RQ worker runs the handler
    finished = _job(app, body["job"]["id"])
    assert finished.status == "finished"
    assert finished.result == {"captures": 0, "objects": 0}


def test_refusing_biometric_capture_through_post_also_queues_destruction(app, client, member):
    _, headers = member
    assert record(client, headers, "biometric_capture", "gdpr").status_code == 201
    response = record(client, headers, "biometric_capture", "gdpr", granted=False)
    assert response.status_code == 202
    assert _job(app, response.get_json()["job"]["id"]).kind == "biometrics.destroy"


def test_an_explicit_jurisdiction_wins_over_the_inferred_one(client, member):
    _, headers = member
    assert record(client, headers, "data_processing", "gdpr").status_code == 201
    response = _withdraw(client, headers, "data_processing", jurisdiction="ccpa")
    assert response.status_code == 201
    assert response.get_json()["jurisdiction"] == "ccpa"


def test_withdrawal_without_history_needs_a_jurisdiction(client, member):
    _, headers = member
    response = _withdraw(client, headers, "marketing")
    assert response.status_code == 422
    assert "jurisdiction" in response.get_json()["errors"]
    explicit = _withdraw(client, headers, "marketing", jurisdiction="generic")
    assert explicit.status_code == 201
    assert explicit.get_json()["jurisdiction"] == "generic"


def test_withdrawal_rejects_unknown_fields_and_types(client, member):
    _, headers = member
    assert record(client, headers, "marketing", "gdpr").status_code == 201
    unknown_field = _withdraw(client, headers, "marketing", reason="spam")
    assert unknown_field.status_code == 422
    assert "reason" in unknown_field.get_json()["errors"]
    bad_jurisdiction = _withdraw(client, headers, "marketing", jurisdiction="mars")
    assert bad_jurisdiction.status_code == 422
    unknown_type = _withdraw(client, headers, "retina_scan")
    assert unknown_type.status_code == 404
    assert unknown_type.mimetype == "application/problem+json"


def test_withdrawal_is_recorded_for_the_caller_only(app, client, make_user, auth_headers, member):
    owner, headers = member
    assert record(client, headers, "marketing", "gdpr").status_code == 201
    other_user = make_user()
    other = auth_headers(other_user)
    assert _withdraw(client, other, "marketing", jurisdiction="gdpr").status_code == 201
    with app.app_context():
        rows = db.session.execute(
            select(ConsentRecord.user_id, ConsentRecord.granted).order_by(ConsentRecord.created_at)
        ).all()
    assert rows == [(owner.id, True), (other_user.id, False)]


def test_destroy_biometrics_is_a_safe_no_op_until_captures_exist(app, member):
    user, _ = member
    with app.app_context():
        assert destroy_biometrics(user.id) == {"captures": 0, "objects": 0}
        assert destroy_biometrics(None) == {"captures": 0, "objects": 0}
