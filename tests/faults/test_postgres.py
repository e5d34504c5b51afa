"""PostgreSQL restarted under the app: between requests, and in the middle of a transaction.

The database is this module's own pgserver cluster (see conftest), restarted with
`pg_ctl restart -m fast`. The mid-transaction fault is placed deterministically:
a test-only trigger makes the request's `jobs` insert wait on an advisory lock the
test holds, so the request is known to be inside its transaction (user, session
and audit rows already written) when its connection is cut.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from tests.support.faults import OwnPostgres, parked_backend, parking_trigger, row_counts, unpark
from tests.support.jobs import rq_job_ids

pytestmark = pytest.mark.slow

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
PASSWORD = "violet-lantern-harbour-42"


def _register(client, email: str, ip: str):
    return client.post(
        REGISTER,
        json={"email": email, "password": PASSWORD},
        environ_overrides={"REMOTE_ADDR": ip},
    )


def _app_backends(own_postgres: OwnPostgres) -> int:
    engine = own_postgres.admin_engine()
    try:
        with engine.connect() as conn:
            return conn.scalar(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'irisvue'")
            )
    finally:
        engine.dispose()


def test_restart_between_requests_next_request_succeeds(pg_app: Flask, own_postgres):
    client = pg_app.test_client()
    email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
    body = _register(client, email, "192.0.2.1").get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get(ME, headers=headers).status_code == 200
    # The app's pool holds a connection to the server about to restart.
    assert _app_backends(own_postgres) >= 1
    before = row_counts(pg_app)

    own_postgres.restart()

    # Checkout finds the pooled connection hung up (irisvue/dbpool.py), opens a new one: no 503.
    response = client.get(ME, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["email"] == email
    login = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.get_json()
    after = row_counts(pg_app)
    assert after["sessions"] == before["sessions"] + 1
    assert {k: v for k, v in after.items() if k not in ("sessions", "audit_events")} == {
        k: v for k, v in before.items() if k not in ("sessions", "audit_events")
    }


@pytest.fixture
def held_jobs_insert(own_postgres: OwnPostgres) -> Iterator[sa.Connection]:
    """Every `jobs` insert parks on the test's advisory lock; yields the lock holder."""
    with parking_trigger(own_postgres.url, "jobs", "true", ready=own_postgres.ensure_running) as h:
        yield h


@pytest.mark.parametrize("fault", ["restart", "terminate_backend"])
def test_connection_lost_mid_transaction_is_503_and_nothing_half_written(
    pg_app: Flask, own_postgres: OwnPostgres, held_jobs_insert, stack_env, fault
):
    client = pg_app.test_client()
    redis = Redis.from_url(stack_env["REDIS_URL"])
    email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
    before, queued_before = row_counts(pg_app), rq_job_ids(redis)
    outcome: dict = {}
    request = threading.Thread(
        target=lambda: outcome.update(response=_register(client, email, "192.0.2.2"))
    )
    request.start()
    try:
        pid = parked_backend(held_jobs_insert)
        if fault == "restart":
            own_postgres.restart()
        else:
            held_jobs_insert.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        request.join(60)
    assert not request.is_alive()

    response = outcome["response"]
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "database_unavailable"
    assert problem["status"] == 503
    assert "psycopg2" not in response.get_data(as_text=True)  # no driver text leaks
    # The user, session and audit rows written before the cut were rolled back with it.
    assert row_counts(pg_app) == before
    assert rq_job_ids(redis) == queued_before  # no job was handed to RQ either

    if fault == "terminate_backend":
        unpark(held_jobs_insert)
    # The same registration, retried, succeeds: the address was never taken.
    retried = _register(client, email, "192.0.2.3")
    assert retried.status_code == 201, retried.get_json()
    after = row_counts(pg_app)
    for table in ("users", "sessions", "jobs"):
        assert after[table] == before[table] + 1, (table, before, after)
    redis.close()


def test_database_down_then_back_requests_are_503_then_served(pg_app: Flask, own_postgres):
    client = pg_app.test_client()
    email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
    body = _register(client, email, "192.0.2.4").get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    before = row_counts(pg_app)

    own_postgres.stop()
    try:
        for response in (
            client.get(ME, headers=headers),
            _register(client, f"down-{email}", "192.0.2.5"),
        ):
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.mimetype == "application/problem+json"
            assert response.get_json()["code"] == "database_unavailable"
    finally:
        own_postgres.start()

    assert row_counts(pg_app) == before  # the refused registration left nothing
    assert client.get(ME, headers=headers).status_code == 200
    assert _register(client, f"down-{email}", "192.0.2.6").status_code == 201
