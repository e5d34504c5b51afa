"""Building an export streams: the worker's peak heap is bounded by the storage part size,
flat in the number of captures, and far below the archive's size."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from minio.helpers import MIN_PART_SIZE

from tests.support.images import BigPng
from tests.support.storage import MiB
from tests.support.uploads import StreamedBody, multipart_chunks, post_streamed

# Fixtures of the capture tests, shared here.


EXPORT = "/api/v1/privacy/export"
# As for uploads (tests/captures/test_memory.py): minio holds up to three 5 MiB
# parts of an unsized stream; the zip sink and a 1 MiB segment on each side
# (decrypting a capture, encrypting the archive), with their copies, add ~4 MiB.
BOUND = 3 * MIN_PART_SIZE + 4 * MiB

pytestmark = pytest.mark.slow


def _upload(client, headers, count: int, start: int) -> None:
    for seed in range(start, start + count):
        body = StreamedBody(multipart_chunks(BigPng(MiB + 512 * 1024, seed=seed).chunks))
        assert post_streamed(client, headers, body).status_code == 201


def _export_peak(client, headers, run_jobs) -> tuple[int, int]:
    job_id = client.post(EXPORT, headers=headers).get_json()["id"]
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert run_jobs() == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "finished", job
    return peak - baseline, job["result"]["size"]


def test_export_peak_memory_is_flat_in_the_number_of_captures(client, signed_in, run_jobs):
    _, headers = signed_in()
    _upload(client, headers, 1, start=1)
    _export_peak(client, headers, run_jobs)  # warm-up: imports, pools, first-use caches

    # Both archives are several parts long: 12 then 28 captures of 1.5 MiB.
    _upload(client, headers, 11, start=2)
    small_growth, small_size = _export_peak(client, headers, run_jobs)
    _upload(client, headers, 16, start=13)
    big_growth, big_size = _export_peak(client, headers, run_jobs)

    print(
        f"\nexport peak heap growth: {small_growth / MiB:.1f} MiB for a "
        f"{small_size / MiB:.1f} MiB archive, {big_growth / MiB:.1f} MiB for "
        f"{big_size / MiB:.1f} MiB"
    )
    assert small_size > 3 * MIN_PART_SIZE and big_size > 2 * small_size
    assert big_growth < BOUND
    assert big_growth < big_size / 2
    assert abs(big_growth - small_growth) < 2 * MiB
