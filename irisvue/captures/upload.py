"""A capture upload as a stream: the multipart `file` part, sniffed, stripped, measured.

`request.files` is never touched: Werkzeug spools large files to temporary
files, and the plaintext of a biometric photo must not reach the disk. The
body is parsed incrementally from `request.stream` with Werkzeug's sans-IO
`MultipartDecoder` (undocumented: fenced in tests/test_dependency_fences.py),
so the pipeline

    request.stream → file part (size limit) → sniff → strip → sha256/size → encryption

holds a few chunks at a time, whatever the file size. Every stage is a lazy
generator: nothing is read before storage pulls, and an error raised in any
stage (413, 415, 422) propagates through the encryption into `storage.put`,
which aborts the object.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

from irisvue.captures.images import (
    JPEG,
    SNIFF_BYTES,
    InvalidImageError,
    UnsupportedImageError,
    sniff,
    strip_jpeg,
    strip_png,
)
from irisvue.errors import APIError

READ_SIZE = 64 * 1024
# Room for the multipart framing around the file (boundaries, part headers,
# small fields): the same allowance as the app's MAX_CONTENT_LENGTH.
MULTIPART_SLACK = 64 * 1024
# The decoder's buffer holds one read plus what it cannot emit yet (a partial
# boundary, or part headers still incomplete): this bounds the headers.
MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 8
FILE_FIELD = "file"


@dataclass(frozen=True)
class UploadRequest:
    """What the upload needs from the HTTP request; the body is opened only when read."""

    content_type: str | None
    content_length: int | None
    open_stream: Callable[[], IO[bytes]]


def too_large(max_bytes: int) -> APIError:
    return APIError(
        413,
        "payload_too_large",
        f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit.",
    )


def check_declared_size(request: UploadRequest, max_bytes: int) -> None:
    """413 from Content-Length alone, before a byte of the body is read."""
    if request.content_length is not None and request.content_length > max_bytes + MULTIPART_SLACK:
        raise too_large(max_bytes)


def _boundary(content_type: str | None) -> bytes:
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/form-data":
        raise APIError(
            415,
            "unsupported_media_type",
            "Send the photo as multipart/form-data with a `file` part.",
        )
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 200 or not boundary.isascii():
        raise APIError(400, "invalid_multipart", "The multipart boundary is missing or invalid.")
    return boundary.encode()


def _missing_file() -> APIError:
    return APIError(
        422,
        "validation_error",
        "The request failed validation; see `errors`.",
        errors={FILE_FIELD: ["Missing data for required field."]},
    )


def _unknown_part(name: str) -> APIError:
    # As for JSON bodies: a part the schema does not name is refused, not ignored.
    return APIError(
        422,
        "validation_error",
        "The request failed validation; see `errors`.",
        errors={name: ["Unknown field."]},
    )


def file_part(stream: IO[bytes], boundary: bytes, max_bytes: int) -> Iterator[bytes]:
    """The data of the `file` part as it arrives; 413 once it passes `max_bytes`.

    The body must hold the `file` part and nothing else: any other part is a
    422, also one after the file (read up to the closing boundary, so the
    error reaches storage.put before the upload is kept).
    """
    decoder = MultipartDecoder(boundary, READ_SIZE + MAX_HEADER_BYTES, max_parts=MAX_PARTS)
    in_file = found = False
    unknown: str | None = None
    size = 0
    try:
        while True:
            event = decoder.next_event()
            if event is NEED_DATA:
                decoder.receive_data(stream.read(READ_SIZE) or None)  # None: end of body
            elif isinstance(event, File | Field):
                if isinstance(event, File) and event.name == FILE_FIELD and not found:
                    if unknown is not None:
                        raise _unknown_part(unknown)
                    in_file = found = True
                elif found:
                    raise _unknown_part(event.name)
                else:  # without a file part the answer is "file missing", whatever came before
                    unknown = event.name if unknown is None else unknown
            elif isinstance(event, Data) and in_file:
                size += len(event.data)
                if size > max_bytes:
                    raise too_large(max_bytes)
                if event.data:
                    yield event.data
                in_file = event.more_data
            elif isinstance(event, Epilogue):
                break
    except ValueError as exc:  # the decoder's "invalid form-data"
        raise APIError(400, "invalid_multipart", "The multipart body is malformed.") from exc
    except RequestEntityTooLarge:
        if unknown is None:  # part headers larger than the decoder's buffer
            raise
        # More than MAX_PARTS parts, none of them the file.
        raise APIError(
            422,
            "validation_error",
            "The request failed validation; see `errors`.",
            errors={
                str(unknown): ["Unknown field."],
                FILE_FIELD: ["Missing data for required field."],
            },
        ) from None
    if not found:
        raise _missing_file()


class Measured:
    """Passes chunks through, counting bytes and hashing them (SHA-256)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._sha256 = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._sha256.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def _invalid_image_as_422(chunks: Iterator[bytes], media_type: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except UnsupportedImageError as exc:
        raise APIError(
            415, "unsupported_media_type", "The PNG uses a critical chunk this service cannot read."
        ) from exc
    except InvalidImageError as exc:
        kind = "JPEG" if media_type == JPEG else "PNG"
        raise APIError(
            422, "invalid_image", f"The file starts like a {kind} but is not a valid one."
        ) from exc


@dataclass
class ImageUpload:
    """The stripped plaintext of an upload (iterate once) and its measurements."""

    content_type: str
    plaintext: Measured

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.plaintext)


def open_upload(request: UploadRequest, max_bytes: int) -> ImageUpload:
    """Read just enough of the body to recognise the image; 415 for anything else.

    Whatever the declared type (part header or file name), only the bytes count.
    """
    check_declared_size(request, max_bytes)
    boundary = _boundary(request.content_type)
    parts = file_part(request.open_stream(), boundary, max_bytes)
    head = b""
    for chunk in parts:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    media_type = sniff(head)
    if media_type is None:
        raise APIError(415, "unsupported_media_type", "Only JPEG and PNG images are accepted.")
    body = itertools.chain((head,), parts)
    stripped = strip_jpeg(body) if media_type == JPEG else strip_png(body)
    return ImageUpload(media_type, Measured(_invalid_image_as_422(stripped, media_type)))
