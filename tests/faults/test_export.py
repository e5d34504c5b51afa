"""The object store goes away during an export: the job fails visibly and offers nothing,
and a download the store drops answers 503."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
from rq.registry import ScheduledJobRegistry

from irisvue import create_app
from irisvue.extensions import db
from irisvue.jobs.dispatch import run_burst_worker
from irisvue.models import Job
from tests.support.faults import TcpProxy
from tests.support.images import BigPng
from tests.support.storage import MiB, objects_under
from tests.support.uploads import StreamedBody, multipart_chunks, post_streamed

# Fixtures of the capture tests, shared here.


EXPORT = "/api/v1/privacy/export"


class CuttingProxy(TcpProxy):
    """Cuts itself once `limit` bytes went upstream: the store vanishes mid-upload."""

    def __init__(self, upstream: str, limit: int) -> None:
        self.limit = limit
        self.sent = 0
        self.armed = False
        super().__init__(upstream)

    def forward(self, data: bytes, source, sink, upstream: bool) -> bool:
        sink.sendall(data)
        if upstream and self.armed:
            self.sent += len(data)
            if self.sent >= self.limit:
                threading.Thread(target=self.cut, daemon=True).start()
                return False
        return True


class FirstReadDropper(TcpProxy):
    """Lets the headers of the store's answer to a GET naming `marker` through, then
    drops that connection: the object opens, and the store is gone at its first read."""

    def __init__(self, upstream: str, marker: bytes) -> None:
        self.marker = marker
        self.dropped: list[bytes] = []  # status lines let through before a drop
        self._asking: set[socket.socket] = set()  # store sides asked such a GET
        self._heads: dict[socket.socket, bytes] = {}  # their answers' first bytes
        super().__init__(upstream)

    def forward(self, data: bytes, source, sink, upstream: bool) -> bool:
        if upstream:
            request_line = data.split(b"\r\n", 1)[0]
            if request_line.startswith(b"GET ") and self.marker in request_line:
                self._asking.add(sink)  # the store's side of this connection
        elif source in self._asking:
            head = self._heads[source] = self._heads.get(source, b"") + data
            if b"\r\n\r\n" not in head:
                return True  # held back until the status line and headers are whole
            headers = head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            sink.sendall(headers)  # not one byte of the body
            self.dropped.append(headers.split(b"\r\n", 1)[0])
            return False
        sink.sendall(data)
        return True


def _row(app, job_id: uuid.UUID) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def test_storage_down_mid_export_fails_with_a_code_and_leaves_no_archive(
    app, signed_in, monkeypatch, stack, raw_s3
):
    user, headers = signed_in()
    proxy = CuttingProxy(stack.s3_endpoint, limit=7 * MiB)
    try:
        monkeypatch.setenv("S3_ENDPOINT", proxy.endpoint)
        monkeypatch.setenv("JOB_MAX_RETRIES", "1")
        own = create_app({"JOB_RETRY_BACKOFF_SECONDS": (1,)})
        own.config["TESTING"] = True
        client = own.test_client()
        for seed in (1, 2, 3, 4):  # ~16 MiB of captures: the archive needs several parts
            body = StreamedBody(multipart_chunks(BigPng(4 * MiB, seed=seed).chunks))
            assert post_streamed(client, headers, body).status_code == 201
        job_id = uuid.UUID(client.post(EXPORT, headers=headers).get_json()["id"])

        proxy.armed = True
        assert run_burst_worker(own) == 1
        row = _row(app, job_id)
        # Retries left: queued again, the error recorded, a retry scheduled with backoff.
        assert (row.status, row.error, row.result) == ("queued", "storage_unavailable", None)
        with own.app_context():
            connection = own.extensions["irisvue.queues"]["exports"].connection
            registry = ScheduledJobRegistry("exports", connection=connection)
            assert str(job_id) in registry.get_job_ids()

        time.sleep(1.2)
        deadline = time.monotonic() + 30
        while _row(app, job_id).status not in ("finished", "failed"):
            assert time.monotonic() < deadline, "the retry never ran"
            run_burst_worker(own)
            time.sleep(0.2)
    finally:
        proxy.cut()

    job = app.test_client().get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert (job["status"], job["error"], job["result"]) == ("failed", "storage_unavailable", None)
    assert job["finished_at"] is not None
    # The store itself never went away: no archive, complete or partial, is in it.
    assert objects_under(raw_s3, stack.s3_bucket, f"users/{user.id}/exports/") == []


def test_redis_down_at_request_time_export_runs_after_relay(
    stack_env, register, consent_documents, tmp_path
):
    """The outbox holds an export requested while Redis is unreachable; nothing is lost."""
    from irisvue.jobs import outbox
    from tests.support.stack import reset_state, start_redis

    redis_server = start_redis(tmp_path)
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"})
    app.config["TESTING"] = True
    try:
        client = app.test_client()
        body = register(client)
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        redis_server.stop()

        response = client.post("/api/v1/privacy/export", headers=headers)
        assert response.status_code == 202, response.get_json()
        job_id = response.get_json()["id"]  # the body is the job, as GET /jobs/{id} shows it
        with app.app_context():
            job = db.session.get(Job, uuid.UUID(job_id))
            assert job.dispatched_at is None and job.status == "queued"
            db.session.remove()

        redis_server.start()
        with app.app_context():
            assert outbox.relay(min_age_seconds=0) == 1
        assert run_burst_worker(app) >= 1
        finished = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
        assert finished["status"] == "finished", finished
        assert finished["result"]["download_url"]
        archive = client.get(finished["result"]["download_url"])
        assert archive.status_code == 200
        assert archive.data[:2] == b"PK"  # a real ZIP comes back decrypted
    finally:
        redis_server.stop()
        reset_state(app)


@pytest.mark.slow
def test_storage_dropped_at_the_first_read_of_a_download_is_503(
    app, client, signed_in, run_jobs, monkeypatch, stack
):
    _, headers = signed_in()
    created = client.post(EXPORT, headers=headers)
    assert created.status_code == 202, created.get_json()
    job_id = created.get_json()["id"]
    run_jobs()
    job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "finished", job
    link = job["result"]["download_url"]

    proxy = FirstReadDropper(stack.s3_endpoint, marker=f"/exports/{job_id}.zip".encode())
    try:
        monkeypatch.setenv("S3_ENDPOINT", proxy.endpoint)
        own = create_app()
        own.config["TESTING"] = True
        response = own.test_client().get(link)
    finally:
        proxy.cut()
    # The GET was answered 200 and opened: the store went at the first read.
    assert proxy.dropped == [b"HTTP/1.1 200 OK"]
    assert (response.status_code, response.mimetype) == (503, "application/problem+json")
    assert response.get_json()["code"] == "storage_unavailable"
    # The archive itself is whole: the same link works on the store reached directly.
    whole = app.test_client().get(link)
    assert (whole.status_code, whole.data[:2]) == (200, b"PK")
