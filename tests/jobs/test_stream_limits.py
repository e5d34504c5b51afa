"""Job event streams are a bounded resource (issue #12 finding 1, SPEC §3 Jobs).

At most SSE_MAX_STREAMS_PER_USER open per user across processes (429
`too_many_streams`), at most half of a worker's threads (503 `busy`), both with
Retry-After; a stream ends at the first poll after its session is revoked and
sends nothing after it.
"""

from __future__ import annotations

import http.client
import json
import runpy
import time
import uuid

import pytest

from irisvue.config import ConfigError, from_env
from irisvue.extensions import db
from irisvue.jobs.streams import LEASE_KEY
from irisvue.models import Job
from tests.support.jobs import pending_job
from tests.support.servers import ROOT, http_get

EVENTS = "/api/v1/jobs/{}/events"
# A test-only kind: its stored result is sent as it is (an export's link is minted
# afresh), so the result planted after a revocation below is what a leak would show.
PROGRESS = "test.progress"


class _Stream:
    """One SSE request over its own connection to the live server."""

    def __init__(self, port: int, job_id: str, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.conn.request("GET", EVENTS.format(job_id), headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def problem(self) -> tuple[int, str, str | None]:
        body = json.loads(self.response.read())
        assert self.response.getheader("Content-Type").startswith("application/problem+json")
        return self.status, body["code"], self.response.getheader("Retry-After")

    def read_until(self, marker: bytes) -> None:
        while marker not in (line := self.response.readline()):
            assert line, f"the stream ended before {marker!r}"

    def read_to_end(self) -> bytes:
        """Everything until the stream ends (a read timeout fails the test)."""
        chunks = []
        while line := self.response.readline():
            chunks.append(line)
        return b"".join(chunks)

    def close(self) -> None:
        self.conn.close()


@pytest.mark.slow
def test_streams_are_capped_and_end_when_their_session_is_revoked(
    app, make_user, auth_headers, live_server
):
    alice, bob = make_user(), make_user()
    alice_headers, bob_headers = auth_headers(alice), auth_headers(bob)
    alice_job, bob_job = (pending_job(app, user.id, PROGRESS) for user in (alice, bob))
    # 6 threads: at most 3 streams in the one worker; 2 per user.
    server = live_server(
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="6",
        LOG_LEVEL="INFO",
        SSE_HEARTBEAT_SECONDS="0.5",
        SSE_POLL_SECONDS="0.2",
        SSE_MAX_STREAM_SECONDS="120",
    )
    port = server.port
    opened: list[_Stream] = []

    def stream(job_id: str, headers: dict[str, str]) -> _Stream:
        opened.append(_Stream(port, job_id, headers))
        return opened[-1]

    try:
        alice_streams = [stream(alice_job, alice_headers) for _ in range(2)]
        for open_stream in alice_streams:
            assert open_stream.status == 200
            open_stream.read_until(b"event: job")
        # Alice's third: her own cap.
        assert stream(alice_job, alice_headers).problem() == (429, "too_many_streams", "1")
        bob_first = stream(bob_job, bob_headers)
        assert bob_first.status == 200
        bob_first.read_until(b"event: job")
        # Bob is under his cap, but the worker gives streams no more than half its threads.
        assert stream(bob_job, bob_headers).problem() == (503, "busy", "1")

        # Ordinary requests still find threads (each answers within its timeout).
        for _ in range(5):
            assert http_get(f"{server.base}/health", timeout=10)[0] == 200
        me = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        me.request("GET", "/api/v1/auth/me", headers=alice_headers)
        answer = me.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["id"] == str(alice.id)

        # Logout-all: Alice's streams end at their next poll and send nothing more,
        # not even a result that appears right after the revocation.
        me.request("POST", "/api/v1/auth/logout-all", headers=alice_headers)
        revoked = me.getresponse()
        assert revoked.status == 204, revoked.read()
        revoked.read()
        me.close()
        with app.app_context():
            job = db.session.get(Job, uuid.UUID(alice_job))
            job.status, job.progress = "finished", 100
            job.result = {"download_url": "/the-secret-link"}
            db.session.commit()
        for open_stream in alice_streams:
            rest = open_stream.read_to_end()
            assert b"the-secret-link" not in rest and b'"finished"' not in rest
        deadline = time.monotonic() + 15  # log lines may reach the file a little later
        while server.output().count('"session_revoked"') < 2:
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.2)

        # Their threads are free again: Bob may open his second stream now.
        bob_second = stream(bob_job, bob_headers)
        assert bob_second.status == 200
        bob_second.read_until(b"event: job")
        assert stream(bob_job, bob_headers).problem() == (429, "too_many_streams", "1")
    finally:
        for open_stream in opened:
            open_stream.close()


def _open(client, job_id: str, headers: dict[str, str]):
    return client.get(EVENTS.format(job_id), headers=headers, buffered=False)


def test_the_per_user_cap_holds_across_processes(make_app, make_user, auth_headers, redis_raw):
    """Three apps stand for three worker processes (each gives streams one of its
    default three threads): the user's count is in Redis, as leases."""
    first, second, third = make_app(), make_app(), make_app()
    user = make_user()
    headers = auth_headers(user)
    job_id = pending_job(first, user.id, PROGRESS)
    held = [_open(app.test_client(), job_id, headers) for app in (first, second)]
    assert [response.status_code for response in held] == [200, 200]
    refused = _open(third.test_client(), job_id, headers)
    assert refused.status_code == 429, refused.get_json()
    assert refused.get_json()["code"] == "too_many_streams"
    assert refused.headers["Retry-After"]
    # Leases expire by themselves if their process dies without releasing them.
    key = LEASE_KEY.format(user.id)
    assert redis_raw.zcard(key) == 2 and redis_raw.pttl(key) > 0

    held[0].close()  # the stream ends: its slot is free in both counts
    assert redis_raw.zcard(key) == 1
    again = _open(first.test_client(), job_id, headers)
    assert again.status_code == 200
    for response in (held[1], again):
        response.close()
    assert redis_raw.zcard(key) == 0


def test_the_worker_share_defaults_to_half_of_gunicorns_threads(monkeypatch, tmp_path):
    for threads in ("", "6", "1"):
        monkeypatch.setenv("GUNICORN_THREADS", threads)
        gunicorn_threads = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["threads"]
        config = from_env({"GUNICORN_THREADS": threads}, tmp_path)
        assert config["GUNICORN_THREADS"] == gunicorn_threads
        assert config["SSE_MAX_STREAMS_PER_WORKER"] == gunicorn_threads // 2
    with pytest.raises(ConfigError, match="SSE_MAX_STREAMS_PER_WORKER"):
        from_env({"GUNICORN_THREADS": "4", "SSE_MAX_STREAMS_PER_WORKER": "3"}, tmp_path)


def _script_calls(redis_raw) -> dict[str, int]:
    stats = redis_raw.info("commandstats")
    names = {"eval": "cmdstat_eval", "evalsha": "cmdstat_evalsha", "load": "cmdstat_script|load"}
    return {name: stats.get(key, {}).get("calls", 0) for name, key in names.items()}


def test_the_lease_scripts_are_sent_to_redis_once(make_app, redis_raw):
    """Leases run by EVALSHA: each Lua script's text reaches Redis once (SCRIPT LOAD
    after the first NOSCRIPT), not with every stream and heartbeat (EVAL)."""
    from irisvue.jobs.streams import EXTENSION

    limits = make_app().extensions[EXTENSION]
    redis_raw.script_flush()
    before = _script_calls(redis_raw)
    for _ in range(3):
        slot = limits.acquire(uuid.uuid4())
        assert slot.leased
        slot.refresh()
        slot.release()
    after = _script_calls(redis_raw)
    calls = {name: after[name] - before[name] for name in after}
    assert calls["eval"] == 0, calls
    assert calls["load"] == 2, calls  # acquire and refresh, once each
    assert calls["evalsha"] >= 6, calls
