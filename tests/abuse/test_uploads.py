"""Hostile multipart capture uploads through the app: 4xx or a clean 201, never a 5xx."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text

from irisvue.extensions import db
from tests.support.images import plain_png
from tests.support.openapi import OPERATIONS, assert_clean
from tests.support.uploads import BOUNDARY

UPLOAD = next(op for op in OPERATIONS if op.method == "POST" and op.path == "/api/v1/captures/")
PNG = plain_png()


def part(disposition: str, data: bytes, content_type: str = "image/png") -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode("utf-8", "surrogatepass")
        + data
        + b"\r\n"
    )


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


FILE = 'form-data; name="file"; filename="iris.png"'
CASES = {
    "nul-in-filename": (body(part('form-data; name="file"; filename="a\x00.png"', PNG)), None),
    "crlf-in-filename": (body(part('form-data; name="file"; filename="a\r\nX: y.png"', PNG)), None),
    "traversal-filename": (
        body(part('form-data; name="file"; filename="../../../etc/passwd"', PNG)),
        None,
    ),
    "overlong-filename": (
        body(part(f'form-data; name="file"; filename="{"a" * 9000}"', PNG)),
        None,
    ),
    "nul-in-part-type": (body(part(FILE, PNG, "image/png\x00text/html")), None),
    "no-file-part": (body(part('form-data; name="other"', b"x")), 422),
    "thousand-parts": (body(*(part(f'form-data; name="f{i}"', b"x") for i in range(1100))), None),
    "huge-part-header": (body(part(FILE + "; x=" + "a" * 70_000, PNG)), None),
    "no-closing-boundary": (part(FILE, PNG), None),
    "garbage": (b"\x00\xff" * 1000, None),
    "png-then-garbage": (body(part(FILE, PNG[:100] + b"\x00" * 5000)), 422),
    "not-an-image": (body(part(FILE, b"<?php system($_GET[x]); ?>", "image/png")), 415),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_multipart_upload(app, client, actor, case):
    data, status = CASES[case]
    response = client.post(
        "/api/v1/captures/",
        input_stream=io.BytesIO(data),
        headers={
            **actor.headers,
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(data)),
        },
    )
    allow = {status} if status else None
    got = assert_clean(UPLOAD, response, allow=allow)
    with app.app_context():
        rows = db.session.execute(text("SELECT count(*) FROM captures")).scalar_one()
        db.session.remove()
    assert rows == (1 if got == 201 else 0)
    if got == 201:  # the file name is never kept or echoed
        assert "passwd" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 5000,
        'multipart/form-data; boundary="\x00"',
        "multipart/mixed; boundary=x",
    ],
)
def test_bad_multipart_content_types(client, actor, content_type):
    data = body(part(FILE, PNG))
    response = client.post(
        "/api/v1/captures/",
        data=data,
        headers={**actor.headers, "Content-Type": content_type},
    )
    assert_clean(UPLOAD, response)
    assert response.status_code >= 400
