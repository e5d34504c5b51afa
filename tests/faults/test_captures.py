"""Uploads that fail half-way leave neither an object nor a row."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from minio import Minio
from sqlalchemy import func, select, text

from irisvue import create_app
from irisvue.extensions import db
from irisvue.models import Capture
from tests.support.faults import TcpProxy
from tests.support.images import BigPng, jpeg_with_gps
from tests.support.stack import start_s3
from tests.support.storage import MiB, objects_under, user_prefix
from tests.support.uploads import StreamedBody, multipart_chunks, post_streamed, upload


def _captures(app, user_id: uuid.UUID) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(Capture).where(Capture.user_id == user_id)
        )


def _interrupted_at(png: BigPng, limit: int, interrupt: Callable[[], None]) -> StreamedBody:
    """The upload's body; `interrupt()` runs once the app has read `limit` bytes of it.

    The length is measured on an uninterrupted copy: StreamedBody would
    otherwise run the generator (and the interruption) before the upload.
    """

    def generate() -> Iterator[bytes]:
        sent, done = 0, False
        for chunk in png.chunks():
            yield chunk
            sent += len(chunk)
            if sent >= limit and not done:
                done = True
                interrupt()

    length = sum(len(chunk) for chunk in multipart_chunks(png.chunks)())
    return StreamedBody(multipart_chunks(generate), length)


@pytest.mark.slow
def test_storage_stopped_mid_upload_is_503_and_leaves_nothing(
    app, signed_in, monkeypatch, tmp_path, stack
):
    user, headers = signed_in()
    s3 = start_s3(tmp_path)
    try:
        monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{s3.port}")
        own = create_app()
        own.config["TESTING"] = True
        body = _interrupted_at(BigPng(12 * MiB), 7 * MiB, s3.stop)

        response = post_streamed(own.test_client(), headers, body)

        assert body.bytes_read >= 7 * MiB  # the store went away mid-upload, not before
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["code"] == "storage_unavailable"
        assert _captures(app, user.id) == 0
        s3.start(timeout=60)
        raw = Minio(
            f"127.0.0.1:{s3.port}",
            stack.s3_access_key,
            stack.s3_secret_key,
            secure=False,
            region="us-east-1",
        )
        # (moto keeps no state across a restart; the proxy test below checks a store that does.)
        assert objects_under(raw, stack.s3_bucket, user_prefix(user.id)) == []
    finally:
        s3.stop()


def test_store_unreachable_mid_upload_is_503_and_leaves_no_object(
    app, signed_in, monkeypatch, stack, raw_s3
):
    user, headers = signed_in()
    proxy = TcpProxy(stack.s3_endpoint)
    try:
        monkeypatch.setenv("S3_ENDPOINT", proxy.endpoint)
        own = create_app()
        own.config["TESTING"] = True
        body = _interrupted_at(BigPng(12 * MiB), 7 * MiB, proxy.cut)

        response = post_streamed(own.test_client(), headers, body)

        assert body.bytes_read >= 7 * MiB  # the store went away mid-upload, not before
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["code"] == "storage_unavailable"
    finally:
        proxy.cut()
    assert _captures(app, user.id) == 0
    # The store itself never went away: it holds no object of the failed upload.
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(user.id)) == []


@pytest.fixture
def refuse_capture_rows(app):
    """A real database failure at the row insert (after the object was stored)."""
    create = [
        "CREATE FUNCTION test_refuse_capture() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        "CREATE TRIGGER test_refuse_capture BEFORE INSERT ON captures "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse_capture()",
    ]
    with app.app_context(), db.engine.begin() as conn:
        for statement in create:
            conn.execute(text(statement))
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_capture ON captures"))
            conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_capture()"))


def test_database_failure_after_the_put_deletes_the_object(
    app, client, signed_in, refuse_capture_rows, raw_s3, stack
):
    user, headers = signed_in()

    response = upload(client, headers, jpeg_with_gps())

    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
    assert _captures(app, user.id) == 0
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(user.id)) == []


def test_withdrawal_during_an_upload_discards_it(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    outcome: dict[str, int] = {}

    def withdraw() -> None:
        # Another request, on its own thread, while this upload is streaming.
        worker = threading.Thread(
            target=lambda: outcome.update(
                status=client.post(
                    "/api/v1/consents/biometric_capture/withdraw", headers=headers
                ).status_code
            )
        )
        worker.start()
        worker.join(30)

    body = _interrupted_at(BigPng(7 * MiB), 6 * MiB, withdraw)
    response = post_streamed(client, headers, body)

    assert body.bytes_read >= 6 * MiB  # withdrawn mid-upload, not before it began
    assert outcome == {"status": 202}
    assert response.status_code == 403
    assert response.get_json()["code"] == "consent_required"
    assert _captures(app, user.id) == 0
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(user.id)) == []
