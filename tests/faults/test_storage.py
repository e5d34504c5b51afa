"""The object store goes away in the middle of an erasure.

The worker's store is reached through a TCP proxy (tests/support/faults.py) that
the test cuts once the first step (key shredded, capture objects and rows
deleted) is done: a test-only trigger parks the worker's progress commit
(`privacy_requests.counts` with objects > 0) until the proxy is cut. The next
step, deleting the rest of `users/<id>/`, then finds no store. The store itself
keeps its state, so the test can count what is left.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from irisvue import create_app
from irisvue.extensions import db
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.models import (
    Capture,
    ConsentRecord,
    ErasureTombstone,
    Job,
    PrivacyRequest,
    Session,
    User,
    UserKey,
)
from tests.support.faults import TcpProxy, parked_backend, parking_trigger, unpark
from tests.support.storage import objects_under, put_extra_object
from tests.support.users import PASSWORD, account_with_data

pytestmark = pytest.mark.slow

ERASURE = "/api/v1/privacy/erasure"


def _count(app, model, user_id: uuid.UUID) -> int:
    with app.app_context():
        value = db.session.scalar(
            select(func.count()).select_from(model).where(model.user_id == user_id)
        )
        db.session.remove()
        return value


def test_storage_down_mid_erasure_is_retried_and_completes_with_full_counts(
    app, client, register, consent_documents, raw_s3, stack, stack_env, mailbox, monkeypatch
):
    body, headers = account_with_data(app, client)
    user_id = uuid.UUID(body["user"]["id"])
    bystander, _ = account_with_data(app, client)
    bystander_id = uuid.UUID(bystander["user"]["id"])
    export_key = put_extra_object(app, user_id)
    prefix = f"users/{user_id}/"
    assert len(objects_under(raw_s3, stack.s3_bucket, prefix)) == 3
    consents = _count(app, ConsentRecord, user_id)
    bystander_objects = objects_under(raw_s3, stack.s3_bucket, f"users/{bystander_id}/")
    run_burst_worker(app)  # the registrations' emails: only the erasure is left to run

    response = client.post(ERASURE, json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 202, response.get_json()
    status_url = response.get_json()["status_url"]
    outcome: dict[str, int] = {}
    with app.app_context():
        job_id = db.session.scalar(select(Job.id).where(Job.kind == "privacy.erase"))
        db.session.remove()

    proxy = TcpProxy(stack.s3_endpoint)
    monkeypatch.setenv("S3_ENDPOINT", proxy.endpoint)
    worker_app = create_app()
    worker_app.config["TESTING"] = True
    # Parked deleting the capture rows: their objects are gone from the store.
    parked = parking_trigger(stack_env["DATABASE_URL"], "captures", "true", events="DELETE")
    try:
        with parked as holder:

            def cut_at_the_parked_commit() -> None:
                try:
                    parked_backend(holder)  # key shredded, capture objects deleted, rows next
                    proxy.cut()  # the store goes before the rest of users/<id>/ is deleted
                    outcome["cut"] = 1
                finally:
                    unpark(holder)  # never leave the worker parked

            # RQ's worker installs signal handlers: it runs on the main thread.
            cutter = threading.Thread(target=cut_at_the_parked_commit, daemon=True)
            cutter.start()
            outcome["ran"] = run_burst_worker(worker_app)
            cutter.join(10)
    finally:
        proxy.cut()
    assert outcome == {"cut": 1, "ran": 1}

    # Half-way, and consistent: key shredded and capture objects gone with their rows;
    # the export archive, the account and its other rows still there, nothing completed.
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert (job.status, job.error, job.attempts) == ("queued", "storage_unavailable", 1)
        db.session.remove()
    assert objects_under(raw_s3, stack.s3_bucket, prefix) == [export_key]
    assert _count(app, Capture, user_id) == 0
    assert _count(app, ConsentRecord, user_id) == consents
    assert _count(app, Session, user_id) == 1
    with app.app_context():
        assert db.session.get(User, user_id) is not None
        assert db.session.scalar(select(func.count()).select_from(ErasureTombstone)) == 0
        assert db.session.scalar(select(PrivacyRequest.completed_at)) is None
        db.session.remove()
    assert client.get(status_url).get_json()["status"] == "pending"

    # The store is back; the retry RQ scheduled (made due now) runs on the real endpoint.
    redis = Redis.from_url(stack_env["REDIS_URL"])
    try:
        scheduled = ScheduledJobRegistry("default", connection=redis)
        assert str(job_id) in scheduled.get_job_ids()
        scheduled.requeue(str(job_id))
    finally:
        redis.close()
    assert run_burst_worker(app) == 1

    done = client.get(status_url).get_json()
    assert done["status"] == "completed"
    # The totals of an uninterrupted run: 2 captures + the export archive.
    assert done["deleted"] == {"captures": 2, "consents": consents, "sessions": 1, "objects": 3}
    assert objects_under(raw_s3, stack.s3_bucket, prefix) == []
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert (job.status, job.attempts, job.error) == ("finished", 2, None)
        assert db.session.get(User, user_id) is None
        assert db.session.scalar(select(func.count()).select_from(ErasureTombstone)) == 1
        db.session.remove()
    for model in (ConsentRecord, Session, UserKey):
        assert _count(app, model, user_id) == 0, model.__name__
    # The other account lost nothing.
    assert _count(app, Capture, bystander_id) == 2
    assert objects_under(raw_s3, stack.s3_bucket, f"users/{bystander_id}/") == (bystander_objects)
