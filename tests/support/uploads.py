"""Capture uploads through the test client: plain multipart, or streamed bodies never whole
in memory."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

from flask.testing import FlaskClient

CAPTURES = "/api/v1/captures/"


BOUNDARY = "irisvue-test-boundary-7f3a"


def multipart_chunks(
    file_chunks: Callable[[], Iterator[bytes]],
    filename: str = "iris.png",
    content_type: str = "image/png",
) -> Callable[[], Iterator[bytes]]:
    def generate() -> Iterator[bytes]:
        yield (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        yield from file_chunks()
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    return generate


class StreamedBody(io.RawIOBase):
    """A request body produced on demand by a generator: never whole in memory.

    The test client measures a body by seeking to its end; that is all `seek` supports.
    `bytes_read` tells how far the app really read.
    """

    def __init__(self, factory: Callable[[], Iterator[bytes]], length: int | None = None) -> None:
        super().__init__()
        self._factory = factory
        self.length = length if length is not None else sum(len(c) for c in factory())
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""
        self.position = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.length + offset if whence == 2 else offset
        return self.position

    def readinto(self, buffer) -> int:
        if self._chunks is None:
            self._chunks = self._factory()
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_read += n
        self.position += n
        return n


def post_streamed(
    client: FlaskClient, headers: dict[str, str], body: StreamedBody, *, chunked: bool = False
):
    """POST a streamed multipart body; `chunked` sends no Content-Length."""
    extra: dict[str, str] = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    overrides = {}
    if chunked:
        extra["Transfer-Encoding"] = "chunked"
        overrides["wsgi.input_terminated"] = True  # what gunicorn sets for chunked bodies
    return client.post(
        CAPTURES, input_stream=body, headers={**headers, **extra}, environ_overrides=overrides
    )


def upload(
    client: FlaskClient,
    headers: dict[str, str],
    data: bytes,
    filename: str = "iris.jpg",
    content_type: str = "image/jpeg",
):
    return client.post(
        CAPTURES,
        data={"file": (io.BytesIO(data), filename, content_type)},
        headers=headers,
        content_type="multipart/form-data",
    )
