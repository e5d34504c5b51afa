"""Reading one S3 object as a stream (the urllib3 response minio hands back)."""

from __future__ import annotations

import urllib3

from irisvue.storage.base import ObjectReader, StorageUnavailable


class S3Reader(ObjectReader):
    """An object body read in chunks; the connection goes back to the pool on close."""

    def __init__(self, key: str, response: urllib3.BaseHTTPResponse) -> None:
        length = response.headers.get("content-length")
        super().__init__(key, int(length) if length else None, response.headers.get("content-type"))
        self._response = response
        self._eof = False

    def _read(self, size: int) -> bytes:
        try:
            data = self._response.read(size)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"read interrupted: {type(exc).__name__}") from exc
        if not data:
            self._eof = True
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                if not (self._eof or getattr(self._response, "length_remaining", None) == 0):
                    # Unread bytes make the connection unusable: drop it.
                    self._response.close()
                self._response.release_conn()
            finally:
                super().close()
