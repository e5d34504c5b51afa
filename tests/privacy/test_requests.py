"""Privacy request records: legal deadlines per jurisdiction, and `flask privacy requests`."""

from __future__ import annotations

from datetime import timedelta

from irisvue.config import from_env
from irisvue.extensions import db
from irisvue.models import PrivacyRequest
from irisvue.models.base import utcnow
from irisvue.privacy.services import complete_request, open_request, pending_request
from tests.support.consent import record


def _open(app, user, kind="export", **kwargs) -> PrivacyRequest:
    with app.app_context():
        request = open_request(user.id, kind, **kwargs)
        db.session.commit()
        db.session.refresh(request)
        db.session.expunge(request)
        return request


def test_deadlines_per_jurisdiction(app, make_user):
    user = make_user()
    for jurisdiction, days in (("gdpr", 30), ("ccpa", 45), ("bipa", 30), ("generic", 30)):
        request = _open(app, user, jurisdiction=jurisdiction)
        assert request.due_at - request.received_at == timedelta(days=days), jurisdiction
        assert request.status == "pending" and request.completed_at is None


def test_deadline_is_configurable(app, make_user, tmp_path):
    assert (
        from_env({"PRIVACY_DEADLINE_DAYS_GDPR": "20"}, tmp_path)["PRIVACY_DEADLINE_DAYS_GDPR"] == 20
    )
    app.config["PRIVACY_DEADLINE_DAYS_DEFAULT"] = 14
    request = _open(app, make_user(), jurisdiction="generic")
    assert request.due_at - request.received_at == timedelta(days=14)


def test_jurisdiction_defaults_to_the_latest_consent(
    app, client, make_user, auth_headers, consent_documents
):
    user = make_user()
    assert _open(app, user).jurisdiction == "generic"
    response = record(client, auth_headers(user), "data_processing", jurisdiction="ccpa")
    assert response.status_code == 201, response.get_json()
    request = _open(app, user, kind="erasure")
    assert request.jurisdiction == "ccpa"
    assert request.due_at - request.received_at == timedelta(days=45)


def test_pending_and_complete(app, make_user):
    user, other = make_user(), make_user()
    with app.app_context():
        assert pending_request(user.id, "export") is None
        request = open_request(user.id, "export")
        open_request(other.id, "export")
        db.session.commit()
        assert pending_request(user.id, "export").id == request.id
        assert pending_request(user.id, "erasure") is None
        complete_request(request)
        db.session.commit()
        first = request.completed_at
        assert request.status == "completed" and first is not None
        complete_request(request)
        assert request.completed_at == first
        assert pending_request(user.id, "export") is None


def test_cli_lists_open_requests_and_flags_due_dates(app, make_user):
    user = make_user()
    with app.app_context():
        now = utcnow()
        overdue = open_request(user.id, "export", jurisdiction="gdpr")
        overdue.received_at, overdue.due_at = now - timedelta(days=31), now - timedelta(days=1)
        soon = open_request(user.id, "erasure", jurisdiction="ccpa")
        soon.due_at = now + timedelta(days=2)
        later = open_request(user.id, "export", jurisdiction="generic")
        done = open_request(user.id, "export", jurisdiction="gdpr")
        complete_request(done)
        db.session.commit()
        ids = {name: str(r.id) for name, r in [("o", overdue), ("s", soon), ("l", later)]}
        done_id = str(done.id)

    result = app.test_cli_runner().invoke(args=["privacy", "requests"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == [ids["o"], ids["s"], ids["l"]]
    assert lines[0].endswith("OVERDUE") and " export " in lines[0]
    assert lines[1].endswith("DUE SOON") and " erasure " in lines[1]
    assert not lines[2].endswith(("OVERDUE", "DUE SOON"))
    assert done_id not in result.output
    assert user.email not in result.output


def test_cli_with_no_open_requests(app):
    result = app.test_cli_runner().invoke(args=["privacy", "requests"])
    assert result.exit_code == 0
    assert "no open privacy requests" in result.output
