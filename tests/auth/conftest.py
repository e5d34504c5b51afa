"""Auth tests: Argon2 made cheap through its own settings (one test keeps the default)."""

from __future__ import annotations

import re

import pytest

PASSWORD = "violet-lantern-harbour-42"


@pytest.fixture(autouse=True)
def cheap_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "argon2_default_profile" in request.fixturenames:
        return
    monkeypatch.setenv("ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ARGON2_MEMORY_COST", "1024")
    monkeypatch.setenv("ARGON2_PARALLELISM", "1")


@pytest.fixture
def argon2_default_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requesting this keeps argon2-cffi's RFC 9106 default profile for the test."""
    for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_from(message) -> str:
    """The single-use token of a delivered verification or reset email."""
    body = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"code in the app: ([A-Za-z0-9_-]{20,})", body)
    assert found, body
    return found.group(1)


@pytest.fixture
def own_redis(app, tmp_path, monkeypatch):
    """A Redis of this test's own, to stop and restart; apps made after this use it.

    Depends on `app` only for its teardown, which truncates the shared database.
    """
    from tests.services import start_redis

    server = start_redis(tmp_path)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    try:
        yield server
    finally:
        server.stop()
