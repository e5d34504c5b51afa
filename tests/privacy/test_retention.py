"""The retention sweep: inactive users' biometrics, spent credentials, expired exports,
old audit events."""

from __future__ import annotations

import uuid
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from irisvue import create_app
from irisvue.extensions import db
from irisvue.jobs.cron import build_scheduler
from irisvue.models import AuditEvent, Capture, EmailToken, Session, User, UserKey
from irisvue.models.base import utcnow
from irisvue.privacy.retention import sweep
from tests.support.images import plain_png
from tests.support.storage import objects_under, user_prefix
from tests.support.uploads import CAPTURES, upload


def _count(app, model, user_id: uuid.UUID) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(model).where(model.user_id == user_id)
        )


def _age(app, user_id: uuid.UUID, days: int) -> None:
    with app.app_context():
        db.session.get(User, user_id).last_seen_at = utcnow() - timedelta(days=days)
        db.session.commit()


def test_sweep_destroys_biometrics_of_inactive_users_only(app, client, signed_in, raw_s3, stack):
    old, old_headers = signed_in()
    recent, recent_headers = signed_in()
    for headers in (old_headers, old_headers, recent_headers):
        assert upload(client, headers, plain_png()).status_code == 201
    _age(app, old.id, 1096)
    _age(app, recent.id, 1094)

    with app.app_context():
        counts = sweep()
    assert (counts["users"], counts["captures"], counts["objects"]) == (1, 2, 2)
    assert _count(app, Capture, old.id) == 0
    assert _count(app, UserKey, old.id) == 0
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(old.id)) == []
    # The account itself stays; only its biometric data is gone.
    with app.app_context():
        assert db.session.get(User, old.id) is not None
    assert _count(app, Capture, recent.id) == 1
    assert _count(app, UserKey, recent.id) == 1
    assert len(objects_under(raw_s3, stack.s3_bucket, user_prefix(recent.id))) == 1
    assert client.get(f"{CAPTURES}", headers=recent_headers).status_code == 200

    with app.app_context():  # idempotent: nothing left to do
        again = sweep()
    assert (again["users"], again["captures"], again["objects"]) == (0, 0, 0)


def test_sweep_deletes_spent_tokens_and_dead_sessions(app, make_user, auth_headers):
    user = make_user()
    auth_headers(user)  # a live session
    now = utcnow()
    with app.app_context():
        live = db.session.scalar(select(Session).where(Session.user_id == user.id))
        dead = Session(
            user_id=user.id,
            expires_at=now - timedelta(days=1),
            refresh_jti="r",
            access_jti="a",
            issued_at=now - timedelta(days=31),
        )
        db.session.add(dead)
        for used, expires in ((None, now + timedelta(hours=1)), (now, now + timedelta(hours=1))):
            db.session.add(
                EmailToken(
                    user_id=user.id,
                    purpose="verify_email",
                    token_hash=uuid.uuid4().hex,
                    expires_at=expires,
                    used_at=used,
                )
            )
        db.session.add(
            EmailToken(
                user_id=user.id,
                purpose="password_reset",
                token_hash=uuid.uuid4().hex,
                expires_at=now - timedelta(minutes=1),
            )
        )
        db.session.commit()
        live_id = live.id

        counts = sweep()
        assert (counts["sessions"], counts["email_tokens"]) == (1, 2)
        assert db.session.scalars(select(Session.id)).all() == [live_id]
        assert db.session.scalar(select(func.count()).select_from(EmailToken)) == 1
        assert sweep()["sessions"] == 0


def test_sweep_is_a_daily_cron_job(app, stack_env):
    redis = Redis.from_url(stack_env["REDIS_URL"])
    try:
        scheduler = build_scheduler(app, redis)
        [cron_job] = [job for job in scheduler.get_jobs() if job.name == "irisvue.retention.sweep"]
        assert cron_job.cron == "0 3 * * *"
        assert cron_job.func_name == "irisvue.privacy.retention.run_sweep"
        # Enqueued as JSON like every job of ours, and run by a worker through the app.
        job = cron_job.enqueue(redis)
        assert Queue("default", connection=redis, serializer=JSONSerializer).count == 1
        assert job.func_name == "irisvue.privacy.retention.run_sweep"
    finally:
        redis.close()


def test_sweep_runs_through_a_real_worker(app, client, signed_in, stack_env, run_jobs):
    old, headers = signed_in()
    assert upload(client, headers, plain_png()).status_code == 201
    _age(app, old.id, 2000)
    redis = Redis.from_url(stack_env["REDIS_URL"])
    try:
        [cron_job] = [
            job
            for job in build_scheduler(app, redis).get_jobs()
            if job.name == "irisvue.retention.sweep"
        ]
        job = cron_job.enqueue(redis)
    finally:
        redis.close()
    assert run_jobs() == 1
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value()["captures"] == 1
    assert _count(app, Capture, old.id) == 0


def test_cli_sweep(app, client, signed_in):
    old, headers = signed_in()
    assert upload(client, headers, plain_png()).status_code == 201
    _age(app, old.id, 1100)
    result = app.test_cli_runner().invoke(args=["privacy", "sweep"])
    assert result.exit_code == 0, result.output
    assert "users=1 captures=1 objects=1" in result.output
    assert str(old.id) not in result.output and old.email not in result.output
    assert _count(app, Capture, old.id) == 0


def test_sweep_deletes_audit_events_past_their_retention(app, make_user, monkeypatch):
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "30")
    user = make_user()
    now = utcnow()
    with app.app_context():
        for days in (400, 31, 29, 0):
            db.session.add(
                AuditEvent(
                    user_id=user.id,
                    event="login_failed",
                    details={"age": days},
                    created_at=now - timedelta(days=days),
                )
            )
        db.session.commit()
    short = create_app()  # reads AUDIT_RETENTION_DAYS=30
    with short.app_context():
        assert short.config["AUDIT_RETENTION_DAYS"] == 30
        assert sweep()["audit_events"] == 2
        ages = sorted(e.details["age"] for e in db.session.scalars(select(AuditEvent)))
        assert ages == [0, 29]
        assert sweep()["audit_events"] == 0


def test_audit_events_are_kept_a_year_by_default(app, make_user):
    user = make_user()
    with app.app_context():
        assert app.config["AUDIT_RETENTION_DAYS"] == 365
        for days in (366, 364):
            db.session.add(
                AuditEvent(
                    user_id=user.id,
                    event="login_failed",
                    details={"age": days},
                    created_at=utcnow() - timedelta(days=days),
                )
            )
        db.session.commit()
        assert sweep()["audit_events"] == 1
        assert [e.details["age"] for e in db.session.scalars(select(AuditEvent))] == [364]
