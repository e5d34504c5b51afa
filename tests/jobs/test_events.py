"""GET /api/v1/jobs/{id}/events: Server-Sent Events of a job until it ends."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid

import pytest

from irisvue.jobs import outbox
from tests.support.servers import http_get


def _submit(app, user, kind: str = "test.progress") -> str:
    with app.app_context():
        job = outbox.submit(kind, user_id=user.id, args={"n": 1})
        outbox.commit()
        return str(job.id)


def _parse(raw: str) -> list[tuple[str, object]]:
    """SSE blocks as (event name, parsed data) and ("comment", text) for heartbeats."""
    out: list[tuple[str, object]] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                out.append(("comment", line[1:].strip()))
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        if "data" in fields:
            out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def _read_all(response) -> str:
    return "".join(
        chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in response.response
    )


def _fast(app, **settings: float) -> None:
    app.config.update({"SSE_POLL_SECONDS": 0.05, **settings})


def test_events_follow_the_job_in_order_until_it_ends(
    app, client, make_user, auth_headers, run_jobs
):
    _fast(app, SSE_MAX_STREAM_SECONDS=30)
    user = make_user()
    headers = auth_headers(user)
    job_id = _submit(app, user)
    response = client.get(f"/api/v1/jobs/{job_id}/events", headers=headers, buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Accel-Buffering"] == "no"

    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(_read_all(response)))
    reader.start()
    time.sleep(0.3)  # the stream has sent the queued state
    assert run_jobs() == 1  # RQ workers need the main thread (signals)
    reader.join(timeout=10)
    assert not reader.is_alive(), "the stream did not end with the job"

    jobs = [data for event, data in _parse(received[0]) if event == "job"]
    assert jobs[0]["status"] == "queued" and jobs[0]["id"] == job_id
    assert jobs[-1]["status"] == "finished" and jobs[-1]["progress"] == 100
    assert jobs[-1]["result"] == {"steps": 3, "echo": 1}
    order = {"queued": 0, "started": 1, "finished": 2}
    ranks = [order[job["status"]] for job in jobs]
    assert ranks == sorted(ranks)
    progress = [job["progress"] for job in jobs]
    assert progress == sorted(progress)
    # Same JSON as GET /jobs/{id}.
    assert jobs[-1] == client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()


def test_a_quiet_job_gets_heartbeats_and_the_stream_ends_at_its_max_duration(
    app, client, make_user, auth_headers
):
    _fast(app, SSE_HEARTBEAT_SECONDS=0.2, SSE_MAX_STREAM_SECONDS=1.2)
    user = make_user()
    job_id = _submit(app, user)  # never run: nothing changes
    started = time.monotonic()
    response = client.get(
        f"/api/v1/jobs/{job_id}/events", headers=auth_headers(user), buffered=False
    )
    events = _parse(_read_all(response))
    assert time.monotonic() - started < 10
    assert events[0][0] == "job" and events[0][1]["status"] == "queued"
    assert events.count(("comment", "keep-alive")) >= 3
    assert events[-1] == ("timeout", {"reason": "max_duration"})


def test_events_of_another_users_job_are_404(app, client, make_user, auth_headers):
    owner, other = make_user(), make_user()
    job_id = _submit(app, owner)
    response = client.get(f"/api/v1/jobs/{job_id}/events", headers=auth_headers(other))
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.get_json()["code"] == "not_found"
    missing = client.get(f"/api/v1/jobs/{uuid.uuid4()}/events", headers=auth_headers(owner))
    assert missing.status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}/events").status_code == 401


def _read_until(response: http.client.HTTPResponse, marker: bytes, timeout: float = 10) -> None:
    # Raw lines of the chunked body (chunk sizes included): enough to spot a marker.
    deadline = time.monotonic() + timeout
    while marker not in response.fp.readline():
        assert time.monotonic() < deadline, f"{marker!r} never arrived"


@pytest.mark.slow
def test_gunicorn_serves_requests_while_a_stream_is_open(app, make_user, auth_headers, live_server):
    user = make_user()
    headers = auth_headers(user)
    job_id = _submit(app, user)  # stays queued: the stream stays open
    server = live_server(
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
        LOG_LEVEL="INFO",
        SSE_HEARTBEAT_SECONDS="0.5",
        SSE_MAX_STREAM_SECONDS="60",
    )
    port = server.port
    stream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        stream.request("GET", f"/api/v1/jobs/{job_id}/events", headers=headers)
        response = stream.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/event-stream")
        assert response.getheader("X-Accel-Buffering") == "no"
        _read_until(response, b"event: job")

        # One worker, one thread on the stream: the others still answer.
        for _ in range(10):
            assert http_get(f"http://127.0.0.1:{port}/health")[0] == 200
        other = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        other.request("GET", f"/api/v1/jobs/{job_id}", headers=headers)
        answer = other.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["status"] == "queued"
        other.close()

        _read_until(response, b": keep-alive")  # the stream is still live
    finally:
        stream.close()  # the client goes away mid-stream

    deadline = time.monotonic() + 15
    while '"client_gone"' not in server.output():
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.2)
    assert server.terminate(timeout=40) == 0
    assert "Traceback" not in server.output()
