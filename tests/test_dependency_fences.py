"""Fences around the private or undocumented APIs of dependencies that IrisVue uses.

One test per API. Each fails with a message naming the call, the module of
ours that relies on it and what to re-check, so a dependency upgrade that
changes one of them stops here rather than in production. pyproject bounds
these dependencies below their next minor (tink: next major); moving a bound
means running this file against the new version first.

The signature checks compare parameter names and kinds only (annotations are
free to change); the rq check compares the source of the method we copied.
"""

from __future__ import annotations

import hashlib
import inspect
import socket
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
S3_UPLOAD = "irisvue/storage/s3_upload.py"


def _fence(ok: bool, api: str, user: str, check: str) -> None:
    if not ok:
        pytest.fail(f"{api} changed ({user} relies on it): {check}", pytrace=False)


def _params(func: Callable) -> list[tuple[str, str]]:
    return [(p.name, p.kind.name) for p in inspect.signature(func).parameters.values()]


def _positional(*names: str) -> list[tuple[str, str]]:
    return [(name, "POSITIONAL_OR_KEYWORD") for name in names]


def _keyword(*names: str) -> list[tuple[str, str]]:
    return [(name, "KEYWORD_ONLY") for name in names]


# --- minio-py (irisvue/storage/s3_upload.py, irisvue/storage/s3.py) ----------


def test_minio_create_multipart_upload() -> None:
    from minio import Minio

    _fence(
        _params(Minio._create_multipart_upload)
        == _positional("self", "bucket_name", "object_name", "headers"),
        "minio.Minio._create_multipart_upload",
        S3_UPLOAD,
        "re-check how PartUpload.run starts a multipart upload (returns the upload id)",
    )


def test_minio_complete_multipart_upload() -> None:
    from minio import Minio
    from minio.datatypes import CompleteMultipartUploadResult

    fields = CompleteMultipartUploadResult.__dataclass_fields__
    _fence(
        _params(Minio._complete_multipart_upload)[:5]
        == _positional("self", "bucket_name", "object_name", "upload_id", "parts")
        and {"etag", "version_id"} <= fields.keys(),
        "minio.Minio._complete_multipart_upload",
        S3_UPLOAD,
        "re-check PartUpload.run's completion call and its use of result.etag/.version_id",
    )


def test_minio_abort_multipart_upload() -> None:
    from minio import Minio

    _fence(
        _params(Minio._abort_multipart_upload)
        == _positional("self", "bucket_name", "object_name", "upload_id"),
        "minio.Minio._abort_multipart_upload",
        S3_UPLOAD,
        "re-check PartUpload._abort (a failed upload must still abort its parts)",
    )


def test_minio_get_region() -> None:
    from minio import Minio

    _fence(
        _params(Minio._get_region) == _positional("self", "bucket_name"),
        "minio.Minio._get_region",
        S3_UPLOAD,
        "re-check the region PartUpload._put signs each part for",
    )


def test_minio_base_url_build() -> None:
    from minio import Minio
    from minio.helpers import BaseURL

    client = Minio("127.0.0.1:9000", secure=False)
    _fence(
        isinstance(getattr(client, "_base_url", None), BaseURL)
        and _params(BaseURL.build)
        == _positional("self")
        + _keyword("method", "region", "bucket_name", "object_name", "query_params"),
        "minio.Minio._base_url.build",
        S3_UPLOAD,
        "re-check how PartUpload._put builds the URL of a part (path or virtual-host style)",
    )


def test_minio_base_url_is_https() -> None:
    from minio import Minio

    plain = Minio("127.0.0.1:9000", secure=False)._base_url
    tls = Minio("127.0.0.1:9000", secure=True)._base_url
    _fence(
        getattr(plain, "is_https", None) is False and getattr(tls, "is_https", None) is True,
        "minio.Minio._base_url.is_https",
        S3_UPLOAD,
        "re-check how PartUpload decides between a signed payload (HTTP) and UNSIGNED-PAYLOAD",
    )


def test_minio_user_agent() -> None:
    from minio import Minio

    client = Minio("127.0.0.1:9000", secure=False)
    _fence(
        isinstance(getattr(client, "_user_agent", None), str),
        "minio.Minio._user_agent",
        S3_UPLOAD,
        "re-check the User-Agent header PartUpload._put sends with each part",
    )


def test_minio_sign_v4_s3() -> None:
    from minio.signer import sign_v4_s3

    _fence(
        _params(sign_v4_s3)
        == _keyword("method", "url", "region", "headers", "credentials", "content_sha256", "date"),
        "minio.signer.sign_v4_s3",
        S3_UPLOAD,
        "re-check how PartUpload._put signs a part (SigV4 over the part's SHA-256)",
    )


def test_minio_part() -> None:
    from minio.datatypes import Part

    part = Part(3, "etag")
    _fence(
        (part.part_number, part.etag) == (3, "etag"),
        "minio.datatypes.Part",
        S3_UPLOAD,
        "re-check the Part(number, etag) list PartUpload._send_parts hands to completion",
    )


def test_minio_s3error_fromxml() -> None:
    from minio.error import S3Error

    _fence(
        _params(S3Error.fromxml) == _positional("response"),
        "minio.error.S3Error.fromxml",
        S3_UPLOAD,
        "re-check how PartUpload._put turns an S3 error body into S3Error (s3_errors.translate)",
    )


def test_minio_min_part_size() -> None:
    from minio.helpers import MIN_PART_SIZE

    _fence(
        MIN_PART_SIZE == 5 * 1024 * 1024,
        "minio.helpers.MIN_PART_SIZE",
        "irisvue/storage/s3.py",
        "S3Storage's default part_size and its memory bound (tests/captures/test_memory.py)",
    )


# --- rq (irisvue/jobs/cron.py) ---------------------------------------------

# sha256 of inspect.getsource(rq.cron.CronJob.enqueue) in rq 3.0.0, the version
# JSONCronJob.enqueue was copied from.
RQ_CRONJOB_ENQUEUE_SHA256 = "7d695e184914aa756e9319fa916d36c6740307ea61b2dd67731b093eff6501e9"


def test_rq_cron_job_enqueue_is_the_copied_one() -> None:
    from rq.cron import CronJob

    source = inspect.getsource(CronJob.enqueue)
    _fence(
        hashlib.sha256(source.encode()).hexdigest() == RQ_CRONJOB_ENQUEUE_SHA256,
        "rq.cron.CronJob.enqueue",
        "irisvue/jobs/cron.py (JSONCronJob.enqueue is a copy of it)",
        "if rq now enqueues cron jobs with the scheduler's serializer, drop JSONCronJob and "
        "JSONCronScheduler; otherwise copy the new body (JSON serializer kept) and update "
        "RQ_CRONJOB_ENQUEUE_SHA256",
    )


def test_rq_cron_job_options() -> None:
    from rq.cron import CronJob

    names = {name for name, _ in _params(CronJob.__init__)}
    wanted = {"queue_name", "func", "interval", "cron", "job_timeout", "result_ttl", "ttl"}
    _fence(
        wanted | {"failure_ttl", "name"} <= names,
        "rq.cron.CronJob.__init__",
        "irisvue/jobs/cron.py (JSONCronScheduler.register passes its options through)",
        "re-check the options build_scheduler registers the relay and the sweep with",
    )


def test_rq_cron_scheduler_cron_jobs() -> None:
    from rq.cron import CronScheduler

    # From the source: an instance would install rq's log handlers in this process.
    _fence(
        "self._cron_jobs: list[CronJob] = []" in inspect.getsource(CronScheduler.__init__)
        and "self._cron_jobs.append(cron_job)" in inspect.getsource(CronScheduler.register)
        and "in self._cron_jobs:" in inspect.getsource(CronScheduler.enqueue_jobs),
        "rq.cron.CronScheduler._cron_jobs",
        "irisvue/jobs/cron.py (JSONCronScheduler.register appends to it)",
        "re-check how the scheduler stores and runs registered jobs",
    )


def test_rq_cron_job_registry_add() -> None:
    from rq import cron_job_registry

    _fence(
        _params(cron_job_registry.add) == _positional("name", "connection", "enqueue_timestamp"),
        "rq.cron_job_registry.add",
        "irisvue/jobs/cron.py (JSONCronJob.enqueue)",
        "re-copy rq.cron.CronJob.enqueue",
    )


def test_rq_cron_job_history_defaults() -> None:
    from rq import defaults

    limit = getattr(defaults, "DEFAULT_CRON_JOB_HISTORY_LIMIT", None)
    ttl = getattr(defaults, "DEFAULT_CRON_JOB_HISTORY_TTL", None)
    _fence(
        isinstance(limit, int) and isinstance(ttl, int),
        "rq.defaults.DEFAULT_CRON_JOB_HISTORY_LIMIT/_TTL",
        "irisvue/jobs/cron.py (JSONCronJob.enqueue)",
        "re-copy rq.cron.CronJob.enqueue",
    )


# --- flask-limiter (irisvue/auth/ratelimit.py) ------------------------------


def test_flask_limiter_storage_dead() -> None:
    from flask import Flask
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI="memory://", RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True)
    limiter = Limiter(get_remote_address, app=app)
    healthy = getattr(limiter, "_storage_dead", None) is False
    main = limiter.limiter
    limiter._storage_dead = True  # what flask-limiter sets when its storage fails
    falls_back = limiter.limiter is not main
    limiter._storage_dead = False  # what init_ratelimit does for each new app
    _fence(
        healthy and falls_back and limiter.limiter is main,
        "flask_limiter.Limiter._storage_dead",
        "irisvue/auth/ratelimit.py (init_ratelimit resets it for each new app)",
        "find how the limiter now marks its storage dead, and reset that instead",
    )


# --- flask-jwt-extended (irisvue/jwtcache.py) ---------------------------------


def test_flask_jwt_extended_decode_jwt_from_config() -> None:
    from flask import Flask
    from flask_jwt_extended import JWTManager, create_access_token, jwt_required
    from flask_jwt_extended.utils import decode_token

    from irisvue.jwtcache import CachingJWTManager

    app = Flask(__name__)
    app.config["JWT_SECRET_KEY"] = "fence-secret-key-long-enough-for-hs256"
    manager = CachingJWTManager(app)

    @app.get("/protected")
    @jwt_required()
    def protected() -> str:
        return "ok"

    with app.app_context():
        token = create_access_token(identity="someone")
        decode_token(token)
    reached_by_decode_token = len(manager.claims_cache) == 1
    manager.claims_cache.clear()
    status = app.test_client().get("/protected", headers={"Authorization": f"Bearer {token}"})
    _fence(
        _params(JWTManager._decode_jwt_from_config)
        == _positional("self", "encoded_token", "csrf_value", "allow_expired")
        and reached_by_decode_token
        and status.status_code == 200
        and len(manager.claims_cache) == 1,
        "flask_jwt_extended.JWTManager._decode_jwt_from_config",
        "irisvue/jwtcache.py (CachingJWTManager overrides it to verify a token once per process)",
        "find where decode_token / jwt_required decode now, or tokens are verified every time",
    )


# --- gunicorn (gunicorn.conf.py) --------------------------------------------


def test_gunicorn_logger_set_handler() -> None:
    from gunicorn import glogging

    setup = inspect.getsource(glogging.Logger.setup)
    _fence(
        _params(glogging.Logger._set_handler)
        == _positional("self", "log", "output", "fmt", "stream")
        and "self._set_handler(self.error_log" in setup
        and "self.access_log" in setup,
        "gunicorn.glogging.Logger._set_handler",
        "gunicorn.conf.py (JsonLogger overrides it to format error and access lines as JSON)",
        "re-check that both gunicorn logs still get JsonLogger's formatter",
    )


def test_gunicorn_request_unreader_sock() -> None:
    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        request = next(iter(RequestParser(Config(), ours, ("127.0.0.1", 1))))
        sock = getattr(getattr(request, "unreader", None), "sock", None)
    _fence(
        sock is ours,
        "gunicorn request.unreader.sock",
        "gunicorn.conf.py (pre_request sets the body timeout on it)",
        "find the request's socket again, or slow bodies hold a thread for ever",
    )


# --- werkzeug (irisvue/captures/upload.py) -----------------------------------


def test_werkzeug_multipart_decoder() -> None:
    from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, File, MultipartDecoder

    body = b"--b\r\nContent-Disposition: form-data; name=file; filename=x\r\n\r\nhello\r\n--b--\r\n"
    decoder = MultipartDecoder(b"b", 1024, max_parts=4)
    decoder.receive_data(body)
    decoder.receive_data(None)
    kinds = []
    while not isinstance(event := decoder.next_event(), Epilogue) and len(kinds) < 10:
        kinds.append("need" if event is NEED_DATA else type(event).__name__)
    _fence(
        kinds[-2:] == [File.__name__, Data.__name__],
        "werkzeug.sansio.multipart.MultipartDecoder",
        "irisvue/captures/upload.py (the streamed capture upload parser)",
        "re-check the event loop in the upload parser",
    )


# --- tink (irisvue/crypto/keys.py) -------------------------------------------


def test_tink_keyset_protos() -> None:
    from tink.proto import aes_gcm_pb2, tink_pb2

    def fields(message: type) -> set[str]:
        return set(message.DESCRIPTOR.fields_by_name)

    _fence(
        {"primary_key_id", "key"} <= fields(tink_pb2.Keyset)
        and {"key_data", "status", "key_id", "output_prefix_type"} <= fields(tink_pb2.Keyset.Key)
        and {"type_url", "value", "key_material_type"} <= fields(tink_pb2.KeyData)
        and {"version", "key_value"} <= fields(aes_gcm_pb2.AesGcmKey)
        and all(hasattr(tink_pb2, name) for name in ("ENABLED", "RAW"))
        and hasattr(tink_pb2.KeyData, "SYMMETRIC"),
        "tink.proto keyset messages",
        "irisvue/crypto/keys.py (master keys are imported as a keyset proto)",
        "re-check how raw MASTER_KEYS bytes become a tink AEAD",
    )


# --- the bounds themselves ----------------------------------------------------


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_lock_files_satisfy_pyproject(lock: str) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            name = name.strip().split("[", 1)[0]  # uv writes extras as `pyjwt[crypto]==...`
            pins[canonicalize_name(name)] = version.split()[0]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if lock == "requirements-dev.lock":
        wanted += project["optional-dependencies"]["dev"]
    outside = []
    for spec in wanted:
        requirement = Requirement(spec)
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or pinned not in requirement.specifier:
            outside.append(f"{requirement.name}=={pinned} vs {requirement.specifier}")
    assert not outside, f"{lock} pins outside pyproject's bounds: re-lock ({outside})"
