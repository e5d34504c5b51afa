"""The outbox end to end: submit + commit → RQ (JSON, ids only) → a real SimpleWorker."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import select

from irisvue.extensions import db
from irisvue.jobs import outbox, queues
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.jobs.registry import UnknownJobKindError, registered_kinds
from irisvue.models import Job
from irisvue.models.base import utcnow
from tests.support.jobs import all_redis_bytes, rq_job_hash
from tests.support.stack import start_redis


def _submit_welcome(app, user) -> uuid.UUID:
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        outbox.commit()
        return job.id


def _row(app, job_id: uuid.UUID) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        db.session.expunge(job)
        return job


def test_welcome_email_through_a_real_worker_with_ids_only_in_redis(
    app, make_user, mailbox, run_jobs, redis_raw
):
    user = make_user("ada.lovelace@example.com")
    job_id = _submit_welcome(app, user)

    row = _row(app, job_id)
    assert row.dispatched_at is not None
    assert (row.status, row.queue, row.args) == ("queued", "emails", {})

    stored = rq_job_hash(redis_raw, str(job_id))
    # JSON, not pickle: the payload is the runner's path and the row id, nothing else.
    assert json.loads(stored["data"]) == ["irisvue.jobs.runner.run_job", None, [str(job_id)], {}]
    assert int(stored["failure_ttl"]) == app.config["JOB_FAILURE_TTL_SECONDS"]
    assert int(stored["result_ttl"]) == app.config["JOB_RESULT_TTL_SECONDS"]
    assert int(stored["timeout"]) == 60
    assert int(stored["retries_left"]) == app.config["JOB_MAX_RETRIES"]
    assert stored["origin"] == b"emails"
    everything = all_redis_bytes(redis_raw)
    assert str(job_id).encode() in everything  # the search does see the job
    assert b"ada.lovelace" not in everything

    assert run_jobs() == 1

    row = _row(app, job_id)
    assert (row.status, row.progress, row.attempts, row.error) == ("finished", 100, 1, None)
    assert row.result == {"sent": True}
    assert row.finished_at is not None and row.started_at is not None
    messages = mailbox.to("ada.lovelace@example.com")
    assert len(messages) == 1
    assert messages[0]["Subject"] == f"Welcome to {app.config['APP_NAME']}"
    assert messages[0]["From"] == app.config["MAIL_FROM"]
    assert messages[0].get_body(("plain",)) is not None
    assert messages[0].get_body(("html",)) is not None
    rq_job = RQJob.fetch(str(job_id), connection=redis_raw, serializer=JSONSerializer)
    assert rq_job.get_status() == JobStatus.FINISHED
    # Even after the run (results, registries, worker stats): no address in Redis.
    everything = all_redis_bytes(redis_raw)
    assert b"rq:results:" + str(job_id).encode() in everything
    assert b"ada.lovelace" not in everything


def test_queues_are_json_and_in_priority_order(app):
    app_queues = queues.get_queues(app)
    assert list(app_queues) == ["emails", "default", "exports"]
    assert all(q.serializer is JSONSerializer for q in app_queues.values())


def test_progress_and_result_of_a_handler(app, make_user, run_jobs):
    user = make_user()
    with app.app_context():
        job = outbox.submit("test.progress", user_id=user.id, args={"n": 7})
        outbox.commit()
        job_id = job.id
    assert run_jobs() == 1
    row = _row(app, job_id)
    assert (row.status, row.progress, row.result) == ("finished", 100, {"steps": 3, "echo": 7})


def test_submit_without_commit_dispatches_nothing(app, make_user, run_jobs):
    user = make_user()
    with app.app_context():
        outbox.submit("email.welcome", user_id=user.id)
        db.session.rollback()
        outbox.commit()  # a later commit in the same session must not send a ghost
        assert db.session.scalars(select(Job)).all() == []
    assert run_jobs() == 0


def test_submit_refuses_unknown_kinds_and_personal_data(app, make_user):
    user = make_user()
    with app.app_context():
        with pytest.raises(UnknownJobKindError):
            outbox.submit("email.nope", user_id=user.id)
        with pytest.raises(ValueError, match="ids"):
            outbox.submit("email.welcome", user_id=user.id, args={"to": user.email})
        with pytest.raises(ValueError, match="JSON"):
            outbox.submit("email.welcome", user_id=user.id, args={"when": object()})


def test_every_feature_registers_its_job_handlers_when_the_app_is_built(app):
    # Each feature's init_app imports its jobs module: no list of handler modules.
    assert set(registered_kinds()) >= {
        "email.welcome",
        "email.verify_email",
        "email.password_reset",
        "biometrics.destroy",
        "privacy.export",
        "privacy.erase",
    }


def test_running_the_same_job_twice_sends_one_email(app, make_user, mailbox, run_jobs, redis_raw):
    from irisvue.jobs.runner import run_job

    user = make_user()
    job_id = _submit_welcome(app, user)
    assert run_jobs() == 1
    with app.app_context():
        # Hand the finished row to RQ again (as a duplicate relay would) ...
        queues.enqueue(db.session.get(Job, job_id))
    assert RQJob.fetch(
        str(job_id), connection=redis_raw, serializer=JSONSerializer
    ).get_status() in (JobStatus.QUEUED,)
    assert run_jobs() == 1
    # ... and call the RQ entry point directly, as the `rq` CLI would.
    with app.app_context():
        run_job(str(job_id))
    assert len(mailbox.to(user.email)) == 1
    assert _row(app, job_id).attempts == 1


def test_redis_down_at_commit_then_relay(make_app, make_user, mailbox, tmp_path):
    redis_server = start_redis(tmp_path)
    try:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0")
        user = make_user()
        redis_server.stop()

        job_id = _submit_welcome(app, user)  # raises nothing: the outbox holds the job
        row = _row(app, job_id)
        assert row.dispatched_at is None and row.status == "queued"

        redis_server.start()
        with app.app_context():
            assert outbox.relay(min_age_seconds=3600) == 0  # too young to relay
            assert outbox.relay(min_age_seconds=0) == 1
            assert outbox.relay(min_age_seconds=0) == 0  # sent once only
        assert _row(app, job_id).dispatched_at is not None
        assert run_burst_worker(app) == 1
        assert _row(app, job_id).status == "finished"
        assert len(mailbox.to(user.email)) == 1
    finally:
        redis_server.stop()


def test_relay_resends_jobs_redis_lost(app, make_user, mailbox, run_jobs, redis_raw):
    user = make_user()
    job_id = _submit_welcome(app, user)
    redis_raw.flushdb()  # Redis restarted without persistence
    with app.app_context():
        assert outbox.relay(min_age_seconds=0, orphan_age_seconds=3600) == 0
        assert outbox.relay(min_age_seconds=0, orphan_age_seconds=0) == 1
    assert run_jobs() == 1
    assert _row(app, job_id).status == "finished"
    assert len(mailbox.to(user.email)) == 1


def test_relay_marks_jobs_rq_gave_up_on_as_failed(app, make_user, redis_raw):
    user = make_user()
    job_id = _submit_welcome(app, user)
    # A work horse killed on its last attempt: RQ failed the job, our runner never knew.
    rq_job = RQJob.fetch(str(job_id), connection=redis_raw, serializer=JSONSerializer)
    rq_job.set_status(JobStatus.FAILED)
    with app.app_context():
        db.session.get(Job, job_id).status = "started"
        db.session.commit()
        assert outbox.relay(min_age_seconds=0, orphan_age_seconds=0) == 0
    row = _row(app, job_id)
    assert (row.status, row.error) == ("failed", "worker_lost")
    assert row.finished_at is not None


def test_relay_takes_only_old_undispatched_rows(app, make_user, run_jobs):
    user = make_user()
    with app.app_context():
        old = outbox.submit("email.welcome", user_id=user.id)
        old.created_at = utcnow() - timedelta(minutes=5)
        young = outbox.submit("email.welcome", user_id=user.id)
        db.session.commit()  # a plain commit: nothing dispatched, as if the process died
        old_id, young_id = old.id, young.id
        assert outbox.relay() == 1
    assert _row(app, old_id).dispatched_at is not None
    assert _row(app, young_id).dispatched_at is None
    assert run_jobs() == 1


def test_relay_skips_rows_another_relay_is_sending(app, make_user, run_jobs):
    user = make_user()
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        db.session.commit()  # undispatched
        job_id = job.id
        with db.engine.connect() as other_relay:
            other_relay.execute(select(Job.id).where(Job.id == job_id).with_for_update())
            assert outbox.relay(min_age_seconds=0) == 0  # locked: not sent twice
            other_relay.rollback()
        assert outbox.relay(min_age_seconds=0) == 1
    assert run_jobs() == 1


def test_flask_jobs_relay_command(app, make_user, run_jobs):
    user = make_user()
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        db.session.commit()
        job_id = job.id
    result = app.test_cli_runner().invoke(args=["jobs", "relay", "--min-age", "0"])
    assert result.exit_code == 0, result.output
    assert "relayed 1 job(s)" in result.output
    assert _row(app, job_id).dispatched_at is not None
    assert run_jobs() == 1


def test_relay_fails_rows_of_a_kind_no_code_handles(app, make_user):
    user = make_user()
    with app.app_context():
        job = Job(kind="retired.kind", queue="default", user_id=user.id, args={})
        db.session.add(job)
        db.session.commit()
        job_id = job.id
        assert outbox.relay(min_age_seconds=0) == 0
    row = _row(app, job_id)
    assert (row.status, row.error) == ("failed", "unknown_job_kind")
