"""Uploads stream: peak memory is bounded by the storage part size, not the file size."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc

from flask.testing import FlaskClient
from minio.helpers import MIN_PART_SIZE

from irisvue import create_app
from irisvue.storage.s3_upload import SLAB_SIZE
from tests.support.images import BigPng, plain_png
from tests.support.storage import MiB
from tests.support.uploads import CAPTURES, StreamedBody, multipart_chunks, post_streamed, upload

# The S3 backend uploads an unsized stream in 5 MiB parts from a pool of
# 1 MiB slabs: one part plus two slabs filled ahead while it is on the wire.
# The rest of the pipeline holds a few chunks and one 1 MiB encryption
# segment (with its copies), plus this test's own body generator: ~2.5 MiB.
BOUND = MIN_PART_SIZE + 2 * SLAB_SIZE + 7 * MiB // 2


def _peak_growth(client: FlaskClient, headers: dict[str, str], png: BigPng) -> tuple[int, dict]:
    body = StreamedBody(multipart_chunks(png.chunks))
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        response = post_streamed(client, headers, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201, response.get_json()
    return peak - baseline, response.get_json()


def test_upload_peak_memory_does_not_grow_with_the_file(client, signed_in, monkeypatch):
    _, headers = signed_in()
    # Warm up: first-use allocations (the data key, connection pools, imports).
    assert upload(client, headers, plain_png(), "iris.png", "image/png").status_code == 201

    # 20 MB: the default MAX_UPLOAD_MB.
    png = BigPng(20 * MiB - 64 * 1024)
    size, sha256 = png.measure()
    growth, created = _peak_growth(client, headers, png)
    assert (created["size"], created["sha256"]) == (size, sha256)

    # 2.4 times bigger, under a raised limit: the same peak.
    monkeypatch.setenv("MAX_UPLOAD_MB", "64")
    roomy = create_app().test_client()
    big = BigPng(48 * MiB)
    big_size, _ = big.measure()
    big_growth, _ = _peak_growth(roomy, headers, big)

    print(
        f"\npeak Python heap growth: {growth / MiB:.1f} MiB for {size / MiB:.1f} MiB, "
        f"{big_growth / MiB:.1f} MiB for {big_size / MiB:.1f} MiB"
    )
    assert growth < BOUND
    assert big_growth < BOUND
    assert big_growth < big_size / 2
    assert abs(big_growth - growth) < 2 * MiB

    # The 20 MB capture reads back intact, streamed in chunks.
    content = client.get(f"{CAPTURES}{created['id']}/content", headers=headers)
    digest = hashlib.sha256()
    for chunk in content.response:
        assert len(chunk) <= 64 * 1024
        digest.update(chunk)
    assert digest.hexdigest() == sha256
