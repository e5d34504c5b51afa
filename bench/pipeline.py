"""Diagnostic: the upload pipeline's CPU in one process, no network, no server.

    .venv/bin/python bench/pipeline.py [--size-mb 20] [--repeats 5]

Feeds a multipart body (a random-pixel PNG, as bench/upload.py sends) from
memory through what POST /api/v1/captures/ runs on the request thread, and
times each added stage by process CPU (median of --repeats):

1. parse + strip: the `file` part of the form (werkzeug's multipart decoder),
   PNG chunk stripping, size and SHA-256 of the plaintext;
2. + encrypt: Tink's streaming AES-GCM-HKDF, drained into 1 MiB slabs as
   `irisvue/storage/s3_upload.py` does;
3. + SigV4 hash: the SHA-256 of each slab that signing a part over plain HTTP
   needs.

What is left of an upload's time beyond these figures is the network and
the S3 server (compare bench/upload.py's app, relay and raw figures).
Not part of bench/run: a diagnostic, like bench/profile.py.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import time

from harness.images import form_frame, make_png

from irisvue.captures.upload import UploadRequest, open_upload
from irisvue.crypto.keys import generate_data_key
from irisvue.crypto.streams import EncryptingReader
from irisvue.storage.base import UploadSource

SLAB = 1024 * 1024
STAGES = ("parse + strip", "+ encrypt", "+ SigV4 hash")


def run(stage: str, body: bytes, content_type: str, data_key: object) -> int:
    """One pass over `body` up to `stage`; returns the bytes that came out."""
    request = UploadRequest(content_type, len(body), lambda: io.BytesIO(body))
    upload = open_upload(request, len(body))
    if stage == STAGES[0]:
        return sum(len(chunk) for chunk in upload)
    source = UploadSource(EncryptingReader(data_key, upload, "bench"))
    slab, total = bytearray(SLAB), 0
    while filled := source.readinto(memoryview(slab)):
        if stage == STAGES[2]:
            hashlib.sha256(memoryview(slab)[:filled])
        total += filled
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    head, tail, content_type = form_frame()
    body = head + make_png(int(args.size_mb * 1e6)) + tail
    data_key = generate_data_key()
    mb = len(body) / 1e6
    print(f"upload pipeline on {mb:.1f} MB in one process, median of {args.repeats} passes")
    for stage in STAGES:
        run(stage, body, content_type, data_key)  # warm-up
        seconds = []
        for _ in range(args.repeats):
            started = time.process_time()
            run(stage, body, content_type, data_key)
            seconds.append(time.process_time() - started)
        cpu = statistics.median(seconds)
        print(f"  {stage:<14} {cpu * 1000:6.1f} ms CPU = {mb / cpu:6.0f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
