"""Storage fixtures: the run's real S3 endpoint (moto over HTTP) and a local directory."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from irisvue.storage import STORAGE_EXTENSION, LocalStorage, S3Storage, Storage
from tests.support.stack import Stack


@pytest.fixture
def s3_store(app: Flask) -> S3Storage:
    store = app.extensions[STORAGE_EXTENSION]
    assert isinstance(store, S3Storage)
    return store


@pytest.fixture
def bare_s3_store(stack: Stack) -> S3Storage:
    """Our S3 backend on the run's endpoint without an app (no database work per test)."""
    return S3Storage(
        stack.s3_endpoint,
        stack.s3_access_key,
        stack.s3_secret_key,
        stack.s3_bucket,
        region="us-east-1",
        sse=True,
    )


@pytest.fixture
def local_store(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


@pytest.fixture(params=["s3", "local"])
def store(request: pytest.FixtureRequest) -> Storage:
    """Each backend in turn; S3 as the app builds it from the environment."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(params=["bare_s3", "local"])
def any_store(request: pytest.FixtureRequest) -> Storage:
    """Each backend in turn, without an app."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def prefix() -> str:
    """A fresh prefix per test: the session's bucket is shared."""
    return f"t-{uuid.uuid4().hex[:12]}/"
