"""Readiness under real outages: our own Redis and S3 processes, stopped and restarted.

The time bound is a correctness check against hanging on a dead dependency
(the checks' budget is HEALTH_TIMEOUT_SECONDS = 1 s), not a benchmark.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from irisvue import create_app
from tests.support.stack import ManagedProcess, free_port, start_redis, start_s3

pytestmark = pytest.mark.slow

BOUND_SECONDS = 3.0
DEPENDENCIES = ("db", "redis", "storage")


def timed_get(client: FlaskClient, path: str):
    started = time.perf_counter()
    response = client.get(path)
    return response, time.perf_counter() - started


def assert_ready(client: FlaskClient, *paths: str) -> None:
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_json())
        assert all(c["status"] == "ok" for c in response.get_json()["checks"].values())


def assert_down(client: FlaskClient, failing: str) -> None:
    """`/health/<failing>` and `/health/ready` answer 503 fast, naming only `failing`."""
    for path in (f"/health/{failing}", "/health/ready"):
        response, elapsed = timed_get(client, path)
        body = response.get_json()
        print(f"{path}: {response.status_code} in {elapsed:.3f}s")  # shown with -s
        assert response.status_code == 503, (path, body)
        assert response.mimetype == "application/json"
        assert elapsed < BOUND_SECONDS, f"{path} took {elapsed:.2f}s"
        assert body["status"] == "unavailable"
        assert body["checks"][failing]["status"] == "error"
        assert body["checks"][failing]["error"]
        assert body["checks"][failing]["latency_ms"] < BOUND_SECONDS * 1000
        if path == "/health/ready":
            healthy = {name for name, check in body["checks"].items() if check["status"] == "ok"}
            assert healthy == set(DEPENDENCIES) - {failing}, body


@pytest.fixture
def own_server(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, ManagedProcess]]:
    """A Redis or S3 of this test's own, and the environment that points the app at it."""
    name = request.param
    server = start_redis(tmp_path) if name == "redis" else start_s3(tmp_path)
    try:
        yield name, server
    finally:
        server.stop()


@pytest.mark.parametrize("own_server", ["redis", "storage"], indirect=True)
def test_outage_is_reported_fast_and_recovery_is_seen(stack_env, own_server, monkeypatch):
    name, server = own_server
    if name == "redis":
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    else:
        monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{server.port}")
        monkeypatch.setenv("S3_BUCKET_NAME", "irisvue-faults")
    client = create_app().test_client()
    assert_ready(client, f"/health/{name}", "/health/ready")

    server.stop()
    assert_down(client, name)

    server.start()
    assert_ready(client, f"/health/{name}", "/health/ready")


def test_database_on_a_closed_port(stack_env, monkeypatch):
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/irisvue"
    )
    client = create_app().test_client()

    assert_down(client, "db")
    assert client.get("/health").status_code == 200  # liveness touches no dependency


@pytest.fixture
def silent_endpoint() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_storage_that_never_answers_does_not_block_the_app(stack_env, silent_endpoint, monkeypatch):
    monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{silent_endpoint}")
    started = time.perf_counter()
    client = create_app().test_client()
    assert time.perf_counter() - started < BOUND_SECONDS  # the factory touches no store

    assert_down(client, "storage")
