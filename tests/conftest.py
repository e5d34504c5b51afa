"""Fixtures for every test: the stack, a fresh app per test, users, a live server.

Helpers live in tests/support/ (see tests/README.md); this file only wires them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from irisvue import create_app
from irisvue.extensions import db
from tests.support import servers, users
from tests.support.stack import (
    STACK_VARIABLES,
    Stack,
    provision,
    reset_state,
    stack_environment,
    teardown,
)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The run's PostgreSQL, Redis, S3 and SMTP (started here unless TEST_* URLs are set)."""
    started, cluster = provision()
    try:
        yield started
    finally:
        teardown(started, cluster)


@pytest.fixture(scope="session")
def stack_env(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Points os.environ at the test stack for the session and migrates the database."""
    env = stack_environment(stack, tmp_path_factory.mktemp("instance"))
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


@pytest.fixture
def app(stack_env: dict[str, str]) -> Iterator[Flask]:
    application = create_app()
    application.config["TESTING"] = True
    yield application
    reset_state(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def mailbox(stack: Stack):
    """Messages delivered to the run's real SMTP listener during this test."""
    stack.mailbox.clear()
    yield stack.mailbox
    stack.mailbox.clear()


@pytest.fixture
def run_jobs(app: Flask):
    """Drains every queue with a real RQ SimpleWorker in burst mode; returns jobs run."""
    from irisvue.jobs.dispatch import run_burst_worker

    def _run() -> int:
        return run_burst_worker(app)

    return _run


@pytest.fixture
def raw_s3(stack: Stack):
    """A plain MinIO client, independent of ours, to see what really reached the bucket."""
    from minio import Minio

    return Minio(
        stack.s3_endpoint,
        stack.s3_access_key,
        stack.s3_secret_key,
        secure=False,
        region="us-east-1",
    )


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


# Users ---------------------------------------------------------------------------


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient, consent_documents: list):
    """The authenticated-user factory: `user, headers = signed_in()`.

    Verified with a live biometric consent unless told otherwise
    (`verified=False`, `consent=False`); `password=` registers through the API.
    """

    def _make(**options) -> users.SignedIn:
        return users.sign_in(app, client, **options)

    return _make


@pytest.fixture
def make_user(app: Flask):
    """Creates a user row directly (the auth blueprint tests registration itself)."""

    def _make(email: str | None = None, *, is_verified: bool = True):
        return users.create_user(app, email, is_verified=is_verified)

    return _make


@pytest.fixture
def auth_headers(app: Flask):
    """Bearer headers for a user: a real session (tokens carry its id) and its access token."""

    def _headers(user) -> dict[str, str]:
        return users.session_headers(app, user)

    return _headers


@pytest.fixture
def register():
    """Registers an account through the API; returns the 201 body (user + token pair).

    Each call comes from its own loopback address, so a test may register many
    accounts without meeting the per-IP registration limit.
    """
    return users.register


@pytest.fixture
def cheap_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 made cheap through its own settings, unless the test asks for
    `argon2_default_profile`. Autouse in tests/auth and tests/faults."""
    if "argon2_default_profile" in request.fixturenames:
        return
    for name, value in users.CHEAP_ARGON2.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def argon2_default_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requesting this keeps argon2-cffi's RFC 9106 default profile for the test."""
    for name in users.CHEAP_ARGON2:
        monkeypatch.delenv(name, raising=False)


# Servers -------------------------------------------------------------------------


@pytest.fixture
def live_server(stack_env: dict[str, str], tmp_path: Path):
    """Starts gunicorn as production runs it: `server = live_server(**settings)`.

    Settings are environment variables for the server (e.g. WEB_CONCURRENCY="1");
    `ready` is the path polled until it answers 200. `server.base` is its URL,
    `server.output()` its log; whatever still runs at teardown is killed.
    """
    with contextlib.ExitStack() as running:
        started = 0

        def _start(*, ready: str = "/health", **settings: str) -> servers.LiveServer:
            nonlocal started
            started += 1
            log = tmp_path / ("gunicorn.log" if started == 1 else f"gunicorn-{started}.log")
            return running.enter_context(servers.gunicorn(log, ready=ready, **settings))

        yield _start


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment naming no part of the stack: the embedded development setup."""
    instance = tmp_path / "instance"
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IRISVUE_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("PYTHON_DOTENV_DISABLED", "1")  # a developer's .env stays out
    return dict(os.environ)
