"""Fixtures of the job tests: apps with their own settings, raw Redis access."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from irisvue import create_app
from tests.support import job_kinds  # noqa: F401 - registers the test-only job kinds
from tests.support.stack import reset_state


@pytest.fixture
def make_app(stack_env: dict[str, str]) -> Iterator:
    """create_app(overrides) for a test; every app built is reset afterwards."""
    built: list[Flask] = []

    def _make(**overrides: Any) -> Flask:
        application = create_app(overrides or None)
        application.config["TESTING"] = True
        built.append(application)
        return application

    yield _make
    for application in built:
        reset_state(application)


@pytest.fixture
def redis_raw(stack_env: dict[str, str]) -> Iterator[Redis]:
    client = Redis.from_url(stack_env["REDIS_URL"])
    yield client
    client.close()
