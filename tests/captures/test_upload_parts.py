"""An upload larger than one S3 part goes out in parts and comes back whole."""

from __future__ import annotations

import hashlib

from tests.support.images import BigPng
from tests.support.storage import MiB, user_prefix
from tests.support.uploads import CAPTURES, StreamedBody, multipart_chunks, post_streamed


def _stored_etag(raw_s3, bucket: str, key: str) -> str:
    return raw_s3.stat_object(bucket, key).etag.strip('"')


def test_a_12_mb_upload_goes_out_in_parts_and_comes_back_whole(client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    png = BigPng(12 * MiB)
    size, sha256 = png.measure()
    body = StreamedBody(multipart_chunks(png.chunks))

    response = post_streamed(client, headers, body)  # with its Content-Length

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert (created["size"], created["sha256"]) == (size, sha256)
    key = f"{user_prefix(user.id)}{created['id']}"
    assert _stored_etag(raw_s3, stack.s3_bucket, key).endswith("-3")  # 5 + 5 + ~2 MiB
    content = client.get(f"{CAPTURES}{created['id']}/content", headers=headers)
    assert content.status_code == 200
    assert hashlib.sha256(content.data).hexdigest() == sha256
