"""What only a real gunicorn shows: header limits, slow and truncated uploads.

One worker with two threads, so two stalled clients would be enough to stop
the whole server if a stalled read were never given up.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from irisvue.extensions import db
from tests.support.images import BigPng
from tests.support.servers import LiveServer, gunicorn, http_get
from tests.support.storage import objects_under
from tests.support.uploads import BOUNDARY
from tests.support.users import SignedIn

pytestmark = pytest.mark.slow

BODY_TIMEOUT = 3  # GUNICORN_BODY_TIMEOUT for the test server (seconds)
THREADS = 2


@pytest.fixture(scope="module")
def live(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server for the module: every test leaves it serving, which the next relies on."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    with gunicorn(
        tmp_path / "gunicorn.log",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS=str(THREADS),
        GUNICORN_BODY_TIMEOUT=str(BODY_TIMEOUT),
        LOG_LEVEL="INFO",
    ) as server:
        yield server
        output = server.output()
        assert server.terminate() == 0, output
        # Nothing reached the app's 500 path, and the one worker was never replaced.
        assert "unhandled_exception" not in output and "Traceback" not in output, output
        assert output.count("Booting worker") == 1, output


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or a bounded 30 s wait ends)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def exchange(live: LiveServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with live.connect() as sock:
        sock.sendall(request)
        raw = read_all(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post_json(*extra: str, body: bytes = b"{}") -> bytes:
    lines = [
        "POST /api/v1/auth/login HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        "Content-Type: application/json",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_serving(live: LiveServer) -> None:
    status, _ = http_get(live.base + "/health", timeout=BODY_TIMEOUT * 4)
    assert status == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(get("/health?q=" + "a" * 5000), 414, id="request-line-5000"),
        pytest.param(get("/health", "X-Big: " + "a" * 9000), 431, id="header-9000"),
        pytest.param(get("/health", *(f"X-H{i}: v" for i in range(101))), 431, id="101-headers"),
        pytest.param(get("/health", "User-Agent: a\x00b"), 400, id="nul-in-header"),
        pytest.param(get("/health", "User-Agent: a\rb"), 400, id="bare-cr-in-header"),
        pytest.param(get("/health", "User-Agent: a", " folded"), 400, id="obs-fold"),
        pytest.param(get("/health", "Bad Name: x"), 400, id="space-in-name"),
        pytest.param(post_json("Content-Length: -1"), 400, id="negative-content-length"),
        pytest.param(post_json("Content-Length: 1e3"), 400, id="float-content-length"),
        pytest.param(
            post_json("Content-Length: 2", "Content-Length: 3"), 400, id="two-content-lengths"
        ),
        pytest.param(
            post_json("Content-Length: 2", "Transfer-Encoding: chunked"), 400, id="cl-and-te"
        ),
        pytest.param(post_json("Transfer-Encoding: gzip, chunked"), 400, id="te-gzip"),
        pytest.param(post_json("Content-Length: 2", body=b'{"a": "\\u0000"}'), 400, id="short-cl"),
        pytest.param(
            post_json("Content-Length: 15", body=b'{"a": "\\u0000"}'), 422, id="nul-escape-body"
        ),
        pytest.param(get("/api/v1/captures/..%2F..%2Fetc"), 404, id="encoded-traversal"),
        pytest.param(get("/api/v1/privacy/erasure/%00"), 400, id="nul-in-path"),
        pytest.param(get("/api/v1/captures/" + "a" * 3000), 404, id="overlong-id"),
    ],
)
def test_request_line_and_header_limits(live, request_bytes, status):
    answer, headers, body = exchange(live, request_bytes)
    assert answer == status, body[:300]
    if status in {414, 431} or (status == 400 and b"a\x00b" not in request_bytes[:40]):
        # gunicorn's own answer (see gunicorn.conf.py): small, closes, no app involved.
        assert headers.get("connection", "").lower() == "close" or "problem" in headers.get(
            "content-type", ""
        )
    if "problem" in headers.get("content-type", ""):
        assert json.loads(body)["status"] == status
    assert b"Traceback" not in body
    assert_serving(live)


def _counts(app, raw_s3, stack) -> tuple[int, int]:
    with app.app_context():
        rows = db.session.execute(text("SELECT count(*) FROM captures")).scalar_one()
        db.session.remove()
    return rows, len(objects_under(raw_s3, stack.s3_bucket, "users/"))


def _upload_head(actor: SignedIn, length: int | None) -> bytes:
    lines = [
        "POST /api/v1/captures/ HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: {actor.headers['Authorization']}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _multipart_start(size: int) -> tuple[bytes, int]:
    """The first part of a valid multipart upload of a `size`-byte PNG, and its full length."""
    preamble = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="iris.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    png = b"".join(BigPng(size).chunks())
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return preamble + png, len(preamble) + len(png) + len(tail)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_slow_then_stalled_uploads_are_given_up(live, app, actor, raw_s3, stack, chunked):
    before = _counts(app, raw_s3, stack)
    body, length = _multipart_start(400_000)
    first, trickle = body[:150_000], body[150_000:150_004]
    if chunked:  # one whole chunk, then a chunk that never completes
        head = _upload_head(actor, None) + b"%x\r\n" % len(first) + first + b"\r\n"
        head += b"%x\r\n" % 1000
    else:
        head = _upload_head(actor, length) + first
    stalled = []
    for _ in range(THREADS):  # enough to hold every thread of the only worker
        sock = live.connect()
        sock.sendall(head)
        stalled.append(sock)
    for sock in stalled:  # a trickle, then nothing at all (the socket stays open)
        for byte in trickle:
            sock.sendall(bytes([byte]))
            time.sleep(0.2)
    try:
        # Others are served again once the stalled reads are given up.
        assert_serving(live)
        for sock in stalled:
            answer = read_all(sock)  # the server ends the exchange; we never close first
            if answer:
                assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
                assert b"incomplete_body" in answer and b"Traceback" not in answer
    finally:
        for sock in stalled:
            sock.close()
    assert _counts(app, raw_s3, stack) == before


def test_declared_oversize_upload_is_refused_before_the_body(live, app, actor, raw_s3, stack):
    before = _counts(app, raw_s3, stack)
    with live.connect() as sock:
        # 10 GB announced, not one byte sent: the answer cannot wait for the body.
        sock.sendall(_upload_head(actor, 10 * 1024**3))
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"payload_too_large" in answer
    assert_serving(live)
    assert _counts(app, raw_s3, stack) == before


def test_truncated_upload_leaves_nothing(live, app, actor, raw_s3, stack):
    before = _counts(app, raw_s3, stack)
    body, length = _multipart_start(1_000_000)
    with live.connect() as sock:
        # Content-Length promises 1 MB; 200 kB arrive, then the client stops sending.
        sock.sendall(_upload_head(actor, length) + body[:200_000])
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    if answer:  # or the connection is simply dropped
        assert answer.split(b"\r\n", 1)[0] in {
            b"HTTP/1.1 400 BAD REQUEST",
            b"HTTP/1.1 400 Bad Request",
        }
        assert b"application/problem+json" in answer and b"Traceback" not in answer
    assert_serving(live)
    assert _counts(app, raw_s3, stack) == before
    # The same worker goes on serving uploads.
    complete = body + f"\r\n--{BOUNDARY}--\r\n".encode()
    status, _, created = exchange(
        live,
        _upload_head(actor, length).replace(
            b"Host: 127.0.0.1", b"Host: 127.0.0.1\r\nConnection: close"
        )
        + complete,
    )
    assert status == 201, created[:300]
    rows, objects = _counts(app, raw_s3, stack)
    assert (rows, objects) == (before[0] + 1, before[1] + 1)


def test_hostile_header_and_path_bytes_keep_every_log_line_json(live):
    # Quotes, braces, backslashes and obs-text bytes are legal in a header value;
    # control characters (ESC, NUL, CR, LF) are refused by gunicorn with a 400.
    agent = 'ua "},{"event":"forged"} \\ \xff\xfe'
    requests = [
        (get("/health", f"User-Agent: {agent}"), 200),
        (get("/health%0A%7B%22event%22:%22forged%22%7D", f"User-Agent: {agent}"), 404),
        (get("/health", "User-Agent: \x1b[2J\x1b[31mred"), 400),
        (get("/health", "User-Agent: a\r\nX-Forged: 1"), 200),  # two header lines
        (get("/health", "User-Agent: a\x00b"), 400),
        (get("/api/v1/auth/me", f"User-Agent: {agent}", "Authorization: Bearer \x85x"), 401),
    ]
    for request_bytes, expected in requests:
        status, _, body = exchange(live, request_bytes)
        assert status == expected, (request_bytes[:60], body[:300])
    assert_serving(live)
    lines = [line for line in live.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each line is one whole JSON object
    assert all(isinstance(r, dict) for r in records)
    assert "forged" not in [r.get("event") for r in records]
    access = [r for r in records if r.get("logger") == "gunicorn.access"]
    assert agent in [r.get("user_agent") for r in access]  # verbatim, escaped by JSON
    assert all(line.isascii() and "\x1b" not in line for line in lines)
