"""Abuse fixtures: a signed-in actor, and one app shared by a module that changes nothing.

The operations under attack come from tests/support/openapi.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from irisvue import create_app
from tests.support.stack import reset_state
from tests.support.users import PASSWORD, SignedIn, sign_in


@pytest.fixture
def actor(signed_in) -> SignedIn:
    """Registered through the API, verified, with a live biometric consent."""
    return signed_in(password=PASSWORD)


@pytest.fixture(scope="module")
def shared_app(stack_env: dict[str, str]) -> Iterator[Flask]:
    """One app (and one actor) for a module whose requests never change state:
    every one of them is refused before a service runs."""
    application = create_app()
    application.config["TESTING"] = True
    yield application
    reset_state(application)


@pytest.fixture(scope="module")
def _shared_actor(shared_app: Flask) -> tuple[FlaskClient, SignedIn]:
    from irisvue.consent.documents import load_documents

    client = shared_app.test_client()
    with shared_app.app_context():
        load_documents()
    return client, sign_in(shared_app, client, password=PASSWORD)


@pytest.fixture
def shared(shared_app: Flask, _shared_actor: tuple[FlaskClient, SignedIn]):
    """(client, actor) of the module's app; rate-limit counters start empty per test."""
    redis = shared_app.extensions.get("irisvue.redis")
    if redis is not None:
        redis.flushdb()
    return _shared_actor
