"""Test images: PNGs of random pixels, and the multipart form that uploads one."""

from __future__ import annotations

import io
import os
import uuid

PNG_WIDTH = 2048


def make_png(target_bytes: int) -> bytes:
    """A valid RGB PNG of random pixels, stored (compress_level=0), about `target_bytes`."""
    from PIL import Image

    height = max(1, target_bytes // (PNG_WIDTH * 3 + 1))
    image = Image.frombytes("RGB", (PNG_WIDTH, height), os.urandom(PNG_WIDTH * height * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=0)
    return out.getvalue()


def form_frame() -> tuple[bytes, bytes, str]:
    """(head, tail, content type) of a multipart form whose one field, `file`, is an
    iris.png: head + the PNG's bytes + tail is the body (send it in pieces to stream)."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="iris.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, f"multipart/form-data; boundary={boundary}"


def multipart(png: bytes) -> tuple[bytes, str]:
    """(body, content type) of the upload form for `png`, in memory."""
    head, tail, content_type = form_frame()
    return head + png + tail, content_type
