"""POST /api/v1/captures/: gates, type sniffing, metadata stripping, size limit, encryption."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta

from PIL import Image
from sqlalchemy import func, select

from irisvue.crypto import ciphertext_size
from irisvue.extensions import db
from irisvue.models import Capture, User, UserKey
from tests.support.images import (
    COMMENT,
    GPS_MODEL,
    BigPng,
    jpeg_with_gps,
    pixels,
    plain_png,
    png_with_metadata,
)
from tests.support.storage import MiB, objects_under, read_object, user_prefix
from tests.support.uploads import CAPTURES, StreamedBody, multipart_chunks, post_streamed, upload


def _count(app, model, user_id: uuid.UUID) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(model).where(model.user_id == user_id)
        )


def _nothing_stored(app, raw_s3, stack, user_id: uuid.UUID) -> bool:
    return _count(app, Capture, user_id) == 0 and not objects_under(
        raw_s3, stack.s3_bucket, user_prefix(user_id)
    )


def _small_body() -> StreamedBody:
    return StreamedBody(multipart_chunks(lambda: iter([plain_png()])))


# --- gates, checked before the body is read ---------------------------------------------


def test_upload_without_consent_is_403_before_reading_the_body(app, client, signed_in):
    _, headers = signed_in(consent=False)
    body = _small_body()

    response = post_streamed(client, headers, body)

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "consent_required"
    assert body.bytes_read == 0


def test_upload_after_withdrawal_is_403(app, client, signed_in):
    _, headers = signed_in()
    withdrawn = client.post("/api/v1/consents/biometric_capture/withdraw", headers=headers)
    assert withdrawn.status_code == 202

    response = upload(client, headers, jpeg_with_gps())

    assert response.status_code == 403
    assert response.get_json()["code"] == "consent_required"


def test_upload_with_unverified_email_is_403_before_reading_the_body(app, client, signed_in):
    _, headers = signed_in(verified=False)
    body = _small_body()

    response = post_streamed(client, headers, body)

    assert response.status_code == 403
    assert response.get_json()["code"] == "email_unverified"
    assert body.bytes_read == 0


def test_upload_without_token_is_401_before_reading_the_body(client):
    body = _small_body()
    response = post_streamed(client, {}, body)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_missing"
    assert body.bytes_read == 0


# --- recognised by bytes -----------------------------------------------------------------


def test_jpeg_with_gps_is_stored_without_metadata_and_with_identical_pixels(app, client, signed_in):
    _, headers = signed_in()
    original = jpeg_with_gps()
    assert b"Exif\x00\x00" in original and GPS_MODEL.encode() in original

    response = upload(client, headers, original)

    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"id", "content_type", "size", "sha256", "created_at"}
    assert body["content_type"] == "image/jpeg"
    content = client.get(f"{CAPTURES}{body['id']}/content", headers=headers)
    assert content.status_code == 200
    assert content.mimetype == "image/jpeg"
    assert content.headers["Cache-Control"] == "no-store"
    stored = content.get_data()
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (body["size"], body["sha256"])
    assert len(stored) < len(original)
    # The metadata bytes are gone...
    for needle in (b"Exif\x00\x00", GPS_MODEL.encode(), b"GPSLatitude", b"http://ns.adobe.com/xap"):
        assert needle not in stored
    assert COMMENT not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif()
        assert "exif" not in image.info and "comment" not in image.info
        assert "xmp" not in image.info
        # ...what decoding needs stays: JFIF and the ICC colour profile.
        assert image.info.get("jfif") and image.info.get("icc_profile")
    with Image.open(io.BytesIO(original)) as image:
        assert image.getexif().get_ifd(0x8825)  # the original really had GPS
    # The pixels were not re-encoded: both decode to exactly the same samples.
    assert pixels(stored) == pixels(original)


def test_progressive_jpeg_keeps_every_scan(app, client, signed_in):
    _, headers = signed_in()
    original = jpeg_with_gps(progressive=True, size=(120, 90))

    response = upload(client, headers, original)

    assert response.status_code == 201, response.get_json()
    stored = client.get(f"{CAPTURES}{response.get_json()['id']}/content", headers=headers).data
    assert GPS_MODEL.encode() not in stored
    assert pixels(stored) == pixels(original)


def test_png_metadata_chunks_are_dropped(app, client, signed_in):
    _, headers = signed_in()
    original = png_with_metadata()

    response = upload(client, headers, original, "iris.png", "image/png")

    assert response.status_code == 201, response.get_json()
    stored = client.get(f"{CAPTURES}{response.get_json()['id']}/content", headers=headers).data
    for chunk_type in (b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME", b"prVt"):
        assert chunk_type in original
        assert chunk_type not in stored
    assert b"gAMA" in stored and b"IDAT" in stored
    assert b"41.8781" not in stored and GPS_MODEL.encode() not in stored
    assert pixels(stored) == pixels(original)


def test_png_renamed_jpg_with_a_lying_content_type_is_stored_as_png(app, client, signed_in):
    _, headers = signed_in()
    original = plain_png()

    response = upload(client, headers, original, "holiday.jpg", "image/jpeg")

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == "image/png"
    content = client.get(f"{CAPTURES}{response.get_json()['id']}/content", headers=headers)
    assert content.mimetype == "image/png"
    assert content.data == original  # nothing to strip: byte for byte


def test_text_file_named_jpg_is_415_and_nothing_is_stored(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()

    response = upload(client, headers, b"just some text, not a photo\n" * 10, "iris.jpg")

    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"
    assert _nothing_stored(app, raw_s3, stack, user.id)
    assert _count(app, UserKey, user.id) == 0  # no key is made for a refused file


def test_broken_jpeg_is_422_and_nothing_is_stored(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    truncated = jpeg_with_gps()[:-400]

    response = upload(client, headers, truncated)

    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_image"
    assert _nothing_stored(app, raw_s3, stack, user.id)


def test_missing_file_part_is_422(app, client, signed_in):
    _, headers = signed_in()
    response = client.post(
        CAPTURES,
        data={"other": "value"},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"file": ["Missing data for required field."]}


def test_json_body_is_415(app, client, signed_in):
    _, headers = signed_in()
    response = client.post(CAPTURES, json={"file": "aGVsbG8="}, headers=headers)
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"


# --- size limit ----------------------------------------------------------------------------


def test_21_mb_with_content_length_is_413_without_reading_the_body(
    app, client, signed_in, raw_s3, stack
):
    user, headers = signed_in()
    assert app.config["MAX_UPLOAD_MB"] == 20
    body = StreamedBody(multipart_chunks(BigPng(21 * MiB).chunks))
    assert body.length > 21 * MiB

    response = post_streamed(client, headers, body)

    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"
    assert body.bytes_read == 0
    assert _nothing_stored(app, raw_s3, stack, user.id)


def test_21_mb_chunked_is_413_once_the_limit_is_passed(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    body = StreamedBody(multipart_chunks(BigPng(21 * MiB).chunks))

    response = post_streamed(client, headers, body, chunked=True)

    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"
    # It stopped reading at the limit, not at the end of the body.
    assert 20 * MiB <= body.bytes_read < body.length
    assert _nothing_stored(app, raw_s3, stack, user.id)


# --- what reaches the bucket -----------------------------------------------------------------


def test_the_object_in_the_bucket_is_ciphertext(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    original = plain_png((200, 120))

    response = upload(client, headers, original, "iris.png", "image/png")

    assert response.status_code == 201
    capture_id = response.get_json()["id"]
    key = f"{user_prefix(user.id)}{capture_id}"
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(user.id)) == [key]
    stored = read_object(raw_s3, stack.s3_bucket, key)
    assert len(stored) == ciphertext_size(len(original))
    assert b"\x89PNG" not in stored and b"IHDR" not in stored and b"IDAT" not in stored
    assert original[100:132] not in stored
    stat = raw_s3.stat_object(stack.s3_bucket, key)
    assert stat.metadata.get("x-amz-server-side-encryption") == "AES256"
    with app.app_context():
        row = db.session.get(Capture, uuid.UUID(capture_id))
        key_row = db.session.scalars(select(UserKey).where(UserKey.user_id == user.id)).one()
        assert (row.object_key, row.size) == (key, len(original))
        assert key_row.master_key_id == "test1"
        assert len(key_row.wrapped_key) > 32


def test_upload_moves_the_retention_clock(app, client, signed_in):
    user, headers = signed_in()
    long_ago = datetime.now(UTC) - timedelta(days=400)
    with app.app_context():
        db.session.get(User, user.id).last_seen_at = long_ago
        db.session.commit()

    assert upload(client, headers, plain_png(), "iris.png", "image/png").status_code == 201

    with app.app_context():
        assert db.session.get(User, user.id).last_seen_at > long_ago + timedelta(days=399)


def test_one_data_key_per_user_across_uploads(app, client, signed_in):
    user, headers = signed_in()
    for _ in range(3):
        assert upload(client, headers, plain_png(), "iris.png", "image/png").status_code == 201
    assert _count(app, UserKey, user.id) == 1
    assert _count(app, Capture, user.id) == 3
