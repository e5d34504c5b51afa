"""Fixtures: real PostgreSQL, Redis and S3 for the run; a fresh app per test."""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from irisvue import create_app
from irisvue.extensions import db
from tests.services import TestServices, provision, teardown


@pytest.fixture(scope="session")
def services() -> Iterator[TestServices]:
    svc, cluster = provision()
    try:
        yield svc
    finally:
        teardown(svc, cluster)


def stack_environment(services: TestServices, instance_path: Path) -> dict[str, str]:
    """The environment of the full stack, as production would set it."""
    return {
        "IRISVUE_ENV": "development",
        "IRISVUE_INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "S3_ENDPOINT": services.s3_endpoint,
        "S3_ACCESS_KEY": services.s3_access_key,
        "S3_SECRET_KEY": services.s3_secret_key,
        "S3_BUCKET_NAME": services.s3_bucket,
        "S3_SSE": "s3",
        "S3_REGION": "us-east-1",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "MASTER_KEYS": f"test1:{secrets.token_urlsafe(32)}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(services.mailbox.port),
        "MAIL_FROM": "IrisVue <no-reply@irisvue.test>",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
def stack_env(
    services: TestServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Points os.environ at the test stack for the session and migrates the database."""
    env = stack_environment(services, tmp_path_factory.mktemp("instance"))
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        import flask_migrate

        app = create_app()
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reset_state(app: Flask) -> None:
    """Per-test isolation by truncation: tests may commit, workers may write."""
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        if tables:
            quoted = ", ".join(f'"{name}"' for name in tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE TABLE {quoted} RESTART IDENTITY CASCADE"))
        db.engine.dispose()
        redis = app.extensions.get("irisvue.redis")
        if redis is not None:
            with contextlib.suppress(Exception):
                redis.flushdb()


@pytest.fixture
def app(stack_env: dict[str, str]) -> Iterator[Flask]:
    application = create_app()
    application.config["TESTING"] = True
    yield application
    reset_state(application)


@pytest.fixture
def mailbox(services: TestServices):
    """Messages delivered to the run's real SMTP listener during this test."""
    services.mailbox.clear()
    yield services.mailbox
    services.mailbox.clear()


@pytest.fixture
def run_jobs(app: Flask):
    """Drains every queue with a real RQ SimpleWorker in burst mode; returns jobs run."""
    from irisvue.jobs.dispatch import run_burst_worker

    def _run() -> int:
        return run_burst_worker(app)

    return _run


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(app: Flask):
    """Creates a user row directly (the auth blueprint tests registration itself)."""
    from irisvue.models import User

    def _make(email: str | None = None, *, is_verified: bool = True) -> User:
        with app.app_context():
            user = User(
                email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
                is_verified=is_verified,
            )
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return _make


@pytest.fixture
def auth_headers(app: Flask):
    """Bearer headers for a user: a real session (tokens carry its id) and its access token."""
    from irisvue.auth.sessions import open_session
    from irisvue.models import User

    def _headers(user) -> dict[str, str]:
        with app.test_request_context(headers={"User-Agent": "pytest"}):
            _, pair = open_session(db.session.get(User, user.id))
            db.session.commit()
        return {"Authorization": f"Bearer {pair.access_token}"}

    return _headers


@pytest.fixture
def consent_documents(app: Flask) -> list:
    """Publishes the packaged consent texts (truncation wipes them after each test)."""
    from irisvue.consent.documents import current_documents, load_documents

    with app.app_context():
        load_documents()
        documents = current_documents()
        for document in documents:
            db.session.expunge(document)
        return documents


@pytest.fixture
def register():
    """Registers an account through the API; returns the 201 body (user + token pair).

    Each call comes from its own loopback address, so a test may register many
    accounts without meeting the per-IP registration limit.
    """
    import itertools

    addresses = itertools.count(2)

    def _register(client: FlaskClient, email: str | None = None, password: str | None = None):
        n = next(addresses)
        response = client.post(
            "/api/v1/auth/register",
            json={
                "email": email or f"user-{uuid.uuid4().hex[:8]}@example.com",
                "password": password or "violet-lantern-harbour-42",
            },
            environ_overrides={"REMOTE_ADDR": f"127.0.{n // 250}.{n % 250 + 1}"},
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _register


@pytest.fixture
def raw_s3(services: TestServices):
    """A plain MinIO client, independent of ours, to see what really reached the bucket."""
    from minio import Minio

    return Minio(
        services.s3_endpoint,
        services.s3_access_key,
        services.s3_secret_key,
        secure=False,
        region="us-east-1",
    )
