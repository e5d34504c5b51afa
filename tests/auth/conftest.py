"""Auth fixtures: Argon2 made cheap for every test here (one test keeps the default)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _cheap_argon2(cheap_argon2: None) -> None:
    """Registrations and logins here test the flows, not hashing cost."""


@pytest.fixture
def own_redis(app, tmp_path, monkeypatch):
    """A Redis of this test's own, to stop and restart; apps made after this use it.

    Depends on `app` only for its teardown, which truncates the shared database.
    """
    from tests.support.stack import start_redis

    server = start_redis(tmp_path)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def idp(app):
    """A local Apple + Google (tests/support/idp.py), the app configured to use it."""
    from tests.support.idp import identity_provider

    with identity_provider() as provider:
        app.config.update(provider.settings())
        yield provider
