"""The S3 backend: MinIO / any S3 endpoint through the MinIO SDK."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import islice

import certifi
import structlog
import urllib3
from minio import Minio
from minio.credentials import StaticProvider
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.helpers import MIN_PART_SIZE  # fenced: tests/test_dependency_fences.py
from minio.sse import SseS3
from urllib3.util import Retry, Timeout

from irisvue.storage.base import (
    DEFAULT_CONTENT_TYPE,
    MAX_DELETE_BATCH,
    DeleteIncompleteError,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PutResult,
    UploadSource,
    UploadStream,
    check_batch_size,
    validate_expiry,
    validate_key,
    validate_prefix,
)
from irisvue.storage.s3_errors import translate
from irisvue.storage.s3_reader import S3Reader
from irisvue.storage.s3_upload import PartUpload

log = structlog.get_logger(__name__)


def _pool(timeout: Timeout, retries: Retry | bool, maxsize: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=timeout,
        retries=retries,
        maxsize=maxsize,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(islice(items, size)):
        yield batch


class S3Storage:
    """Objects in one bucket of an S3 endpoint (`host:port`).

    Two HTTP pools: the main one for transfers (connect 2 s; read 20 s, which
    bounds each wait for bytes, not a whole transfer; two connect retries with
    backoff, so a refused connection fails in ~0.4 s) and a probe pool for
    `ping()` with the health budget and no retries, so a dead or hung endpoint
    fails a probe within about a second. Nothing touches the network at
    construction: the bucket is checked (and created when missing) lazily,
    once, at the first operation.

    Uploads go out in parts of `part_size` (>= 5 MiB, S3's minimum) through
    `PartUpload`: a pool of 1 MiB slabs per upload (one part and two slabs),
    one part in flight while the next is read, so memory is part_size + 2 MiB
    whatever the size.
    A failed upload aborts its multipart upload; if the store is unreachable
    even for that, the parts stay invisible until a lifecycle rule
    (AbortIncompleteMultipartUpload) removes them.
    """

    backend = "s3"
    supports_presign = True

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        sse: bool = False,
        part_size: int = MIN_PART_SIZE,
        connect_timeout: float = 2.0,
        read_timeout: float = 20.0,
        probe_timeout: float = 1.0,
        max_connections: int = 10,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.part_size = part_size
        self._sse = SseS3() if sse else None
        retries = Retry(
            total=3,
            connect=2,
            read=1,
            status=2,
            backoff_factor=0.2,
            status_forcelist=(500, 502, 503, 504),
        )
        main = _pool(Timeout(connect=connect_timeout, read=read_timeout), retries, max_connections)
        probe_limits = Timeout(connect=min(connect_timeout, probe_timeout), read=probe_timeout)
        probe = _pool(probe_limits, False, 2)
        if access_key and not secret_key:
            raise ValueError("secret key must be provided with access key")  # as Minio() says
        # Kept, with the pool, for PartUpload, which signs and sends its own requests.
        self._credentials = StaticProvider(access_key, secret_key) if access_key else None
        self._http = main
        self._client = Minio(
            endpoint, secure=secure, region=region, http_client=main, credentials=self._credentials
        )
        self._probe = Minio(
            endpoint, secure=secure, region=region, http_client=probe, credentials=self._credentials
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    @property
    def client(self) -> Minio:
        """The underlying MinIO client (for tools and tests, not for feature code)."""
        return self._client

    @contextmanager
    def _errors(self, op: str, source: UploadSource | None = None) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if source is not None and source.error is not None:
                # The caller's stream failed: its exception (a 413, a client
                # disconnect) is the one that matters, not ours.
                if exc is source.error:
                    raise
                log.warning("storage.cleanup_failed", op=op, error=type(exc).__name__)
                raise source.error from exc
            if isinstance(exc, S3Error) and exc.code == "NoSuchBucket":
                self._bucket_ready = False  # removed behind our back: recreate next time
            error = translate(op, exc)
            if error is None:
                raise
            raise error from exc

    def _create_bucket(self, client: Minio) -> None:
        if client.bucket_exists(self.bucket):
            return
        try:
            client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # lost a race with another worker
                raise

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (idempotent)."""
        with self._lock, self._errors("ensure_bucket"):
            self._create_bucket(self._client)
            self._bucket_ready = True

    def _ready(self) -> None:
        if not self._bucket_ready:
            self.ensure_bucket()

    def put(
        self,
        key: str,
        stream: UploadStream,
        length: int = -1,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> PutResult:
        """Stream `stream` into `key`; multipart in `part_size` parts when large or unsized.

        `length` (-1 when unknown) must match the stream if given. Requests
        SSE-S3 when configured. Exceptions raised by `stream` pass through.
        """
        validate_key(key)
        self._ready()
        source = UploadSource(stream)
        headers = dict(self._sse.headers()) if self._sse else {}
        headers["Content-Type"] = content_type or DEFAULT_CONTENT_TYPE
        upload = PartUpload(
            self._client,
            self.bucket,
            key,
            headers,
            self.part_size,
            http=self._http,
            credentials=self._credentials,
        )
        with self._errors("put", source):
            etag, version_id = upload.run(source, length)
        return PutResult(key, source.count, etag, version_id)

    def open(self, key: str) -> ObjectReader:
        """A streamed reader of the object; raises `ObjectNotFound`. The caller closes it."""
        validate_key(key)
        self._ready()
        with self._errors("open"):
            response = self._client.get_object(self.bucket, key)
        return S3Reader(key, response)

    def stat(self, key: str) -> ObjectInfo | None:
        """Size, etag, content type and SSE of the object, or None if it does not exist."""
        validate_key(key)
        self._ready()
        try:
            with self._errors("stat"):
                obj = self._client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=obj.size or 0,
            etag=obj.etag or "",
            content_type=obj.content_type,
            last_modified=obj.last_modified,
            sse=(obj.metadata or {}).get("x-amz-server-side-encryption"),
        )

    def presigned_get(self, key: str, expires: timedelta) -> str:
        """A SigV4 presigned GET URL valid for `expires` (1 s .. 7 days); no existence check."""
        validate_key(key)
        validate_expiry(expires)
        with self._errors("presign"):  # may look up the bucket's region once
            return self._client.presigned_get_object(self.bucket, key, expires=expires)

    def delete(self, key: str) -> None:
        """Delete the object; a missing key is not an error."""
        validate_key(key)
        self._ready()
        with self._errors("delete"):
            self._client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str, batch_size: int = MAX_DELETE_BATCH) -> int:
        """Delete every object under `prefix` in DeleteObjects batches; returns the count.

        Listing is lazy, so memory stays flat in the number of objects. Keys the
        store refuses raise `DeleteIncompleteError` after every batch was tried.
        """
        validate_prefix(prefix)
        check_batch_size(batch_size)
        self._ready()
        deleted = 0
        failed: list[tuple[str, str]] = []
        with self._errors("delete_prefix"):
            listing = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            names = (obj.object_name for obj in listing if obj.object_name)
            for batch in _batched(names, batch_size):
                # remove_objects is lazy: iterating its errors is what sends the request.
                errors = list(
                    self._client.remove_objects(self.bucket, [DeleteObject(n) for n in batch])
                )
                deleted += len(batch) - len(errors)
                failed.extend((e.name or "", e.code) for e in errors)
        if failed:
            raise DeleteIncompleteError(deleted, failed)
        return deleted

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix` with its size and last-modified time (lazy listing)."""
        validate_prefix(prefix)
        self._ready()
        with self._errors("list_prefix"):
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name:
                    yield ObjectInfo(
                        key=obj.object_name,
                        size=obj.size or 0,
                        etag=obj.etag or "",
                        content_type=None,
                        last_modified=obj.last_modified,
                    )

    def ping(self) -> None:
        """Check the endpoint answers for our bucket within the probe timeout.

        A missing bucket is created (the same lazy creation as the first put),
        so a fresh or restarted store reports ready.
        """
        with self._errors("ping"):
            if not self._probe.bucket_exists(self.bucket):
                self._bucket_ready = False
                self._create_bucket(self._probe)
