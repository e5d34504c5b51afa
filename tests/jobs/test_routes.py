"""GET /api/v1/jobs/{id}: the owner sees the job; anyone else sees nothing."""

from __future__ import annotations

import uuid

from irisvue.jobs import outbox

FIELDS = {"id", "kind", "status", "progress", "result", "error", "created_at", "finished_at"}


def _welcome_job(app, user) -> str:
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        outbox.commit()
        return str(job.id)


def test_owner_follows_a_job_from_queued_to_finished(
    app, client, make_user, auth_headers, run_jobs
):
    user = make_user()
    headers = auth_headers(user)
    job_id = _welcome_job(app, user)

    response = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == FIELDS
    assert body["id"] == job_id
    assert (body["kind"], body["status"], body["progress"]) == ("email.welcome", "queued", 0)
    assert body["result"] is None and body["error"] is None and body["finished_at"] is None
    assert "no-store" in response.headers["Cache-Control"]

    assert run_jobs() == 1
    body = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert (body["status"], body["progress"], body["result"]) == ("finished", 100, {"sent": True})
    assert body["finished_at"] >= body["created_at"]


def test_another_users_job_is_404_not_403(app, client, make_user, auth_headers):
    owner, other = make_user(), make_user()
    job_id = _welcome_job(app, owner)
    response = client.get(f"/api/v1/jobs/{job_id}", headers=auth_headers(other))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "not_found"


def test_unknown_job_is_404(client, make_user, auth_headers):
    response = client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=auth_headers(make_user()))
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_not_a_uuid_is_404(client, make_user, auth_headers):
    response = client.get("/api/v1/jobs/not-a-uuid", headers=auth_headers(make_user()))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_no_token_is_401_problem(app, client, make_user):
    job_id = _welcome_job(app, make_user())
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "token_missing"


def test_job_route_is_documented(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/jobs/{job_id}"]["get"]
    assert operation["summary"]
    assert {"200", "401", "404"} <= set(operation["responses"])
