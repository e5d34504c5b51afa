"""Encryption at work: swapped or tampered objects, shredded keys, master key rotation."""

from __future__ import annotations

import io
import secrets

import pytest
from sqlalchemy import delete, select

from irisvue import create_app
from irisvue.crypto import DecryptionError
from irisvue.extensions import db
from irisvue.models import UserKey
from tests.support.images import BigPng, jpeg_with_gps
from tests.support.storage import MiB, objects_under, read_object, user_prefix
from tests.support.uploads import CAPTURES, StreamedBody, multipart_chunks, post_streamed, upload


def _key(user, capture: dict) -> str:
    return f"{user_prefix(user.id)}{capture['id']}"


def _put(raw_s3, bucket: str, key: str, data: bytes) -> None:
    raw_s3.put_object(bucket, key, io.BytesIO(data), len(data))


def test_objects_swapped_between_users_do_not_decrypt(app, client, signed_in, raw_s3, stack):
    alice_user, alice = signed_in()
    bob_user, bob = signed_in()
    photo = jpeg_with_gps()  # same size for both: only the key and the AD differ
    a = upload(client, alice, photo).get_json()
    b = upload(client, bob, photo).get_json()
    bucket = stack.s3_bucket
    alice_bytes = read_object(raw_s3, bucket, _key(alice_user, a))
    bob_bytes = read_object(raw_s3, bucket, _key(bob_user, b))
    assert len(alice_bytes) == len(bob_bytes) and alice_bytes != bob_bytes

    _put(raw_s3, bucket, _key(alice_user, a), bob_bytes)
    _put(raw_s3, bucket, _key(bob_user, b), alice_bytes)

    for headers, capture in ((alice, a), (bob, b)):
        response = client.get(f"{CAPTURES}{capture['id']}/content", headers=headers)
        assert response.status_code == 500
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["code"] == "integrity_error"
        assert "Traceback" not in response.get_data(as_text=True)


def test_objects_swapped_between_captures_of_one_user_do_not_decrypt(
    app, client, signed_in, raw_s3, stack
):
    user, headers = signed_in()
    photo = jpeg_with_gps()
    first = upload(client, headers, photo).get_json()
    second = upload(client, headers, photo).get_json()
    bucket = stack.s3_bucket
    _put(raw_s3, bucket, _key(user, second), read_object(raw_s3, bucket, _key(user, first)))

    response = client.get(f"{CAPTURES}{second['id']}/content", headers=headers)

    assert response.status_code == 500
    assert response.get_json()["code"] == "integrity_error"
    assert client.get(f"{CAPTURES}{first['id']}/content", headers=headers).status_code == 200


def test_a_truncated_object_is_refused_before_the_response_starts(
    app, client, signed_in, raw_s3, stack
):
    user, headers = signed_in()
    capture = upload(client, headers, jpeg_with_gps()).get_json()
    key = _key(user, capture)
    _put(raw_s3, stack.s3_bucket, key, read_object(raw_s3, stack.s3_bucket, key)[:-10])

    response = client.get(f"{CAPTURES}{capture['id']}/content", headers=headers)

    assert response.status_code == 500
    assert response.get_json()["code"] == "integrity_error"


def test_tampering_after_the_first_segment_breaks_the_stream(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    png = BigPng(int(1.5 * MiB))
    response = post_streamed(client, headers, StreamedBody(multipart_chunks(png.chunks)))
    assert response.status_code == 201, response.get_json()
    capture = response.get_json()
    key = _key(user, capture)
    data = bytearray(read_object(raw_s3, stack.s3_bucket, key))
    data[int(1.3 * MiB)] ^= 0x01  # inside the second 1 MiB segment
    _put(raw_s3, stack.s3_bucket, key, bytes(data))

    response = client.get(f"{CAPTURES}{capture['id']}/content", headers=headers)

    # The first segment authenticates, so the response has started; the broken
    # segment then aborts the body instead of ending it quietly short.
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(capture["size"])
    with pytest.raises(DecryptionError):
        response.get_data()


def test_deleting_the_wrapped_key_makes_the_objects_unreadable(
    app, client, signed_in, raw_s3, stack
):
    user, headers = signed_in()
    capture = upload(client, headers, jpeg_with_gps()).get_json()
    url = f"{CAPTURES}{capture['id']}/content"
    assert client.get(url, headers=headers).status_code == 200
    with app.app_context():
        db.session.execute(delete(UserKey).where(UserKey.user_id == user.id))
        db.session.commit()

    response = client.get(url, headers=headers)

    assert response.status_code == 410
    assert response.get_json()["code"] == "content_destroyed"
    # The ciphertext is still in the bucket, but nothing can read it any more.
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(user.id)) == [_key(user, capture)]


def test_rewrap_moves_every_key_to_the_new_master_key(
    app, client, signed_in, monkeypatch, stack_env
):
    user, headers = signed_in()
    photo = jpeg_with_gps()
    capture = upload(client, headers, photo).get_json()
    stored = client.get(f"{CAPTURES}{capture['id']}/content", headers=headers).data
    old_entry = stack_env["MASTER_KEYS"]  # "test1:..."
    new_entry = f"new1:{secrets.token_urlsafe(32)}"

    monkeypatch.setenv("MASTER_KEYS", f"{new_entry},{old_entry}")
    rotating = create_app()
    result = rotating.test_cli_runner().invoke(args=["keys", "rewrap"])
    assert result.exit_code == 0, result.output
    assert "rewrapped 1 key(s) under master key 'new1'; 0 failed" in result.output
    again = rotating.test_cli_runner().invoke(args=["keys", "rewrap"])
    assert "rewrapped 0 key(s)" in again.output

    with app.app_context():
        row = db.session.scalars(select(UserKey).where(UserKey.user_id == user.id)).one()
        assert row.master_key_id == "new1" and row.rotated_at is not None

    # With the old master key removed, the capture still reads back.
    monkeypatch.setenv("MASTER_KEYS", new_entry)
    rotated = create_app()
    response = rotated.test_client().get(f"{CAPTURES}{capture['id']}/content", headers=headers)
    assert response.status_code == 200
    assert response.data == stored
    # An app that only knows the old master key cannot open the re-wrapped key.
    response = client.get(f"{CAPTURES}{capture['id']}/content", headers=headers)
    assert response.status_code == 500
    assert response.get_json()["code"] == "key_unavailable"
