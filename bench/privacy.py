"""Benchmark: account erasure with many stored objects, and the data export's memory, one run.

    .venv/bin/python bench/privacy.py [--objects 10000] [--captures 100] [--capture-mb 5]
                                      [--small-captures 10]

Starts moto's standalone S3 server on loopback; PostgreSQL and Redis as the
other bench scripts (scratch DB migrated with `flask release`). The app runs
in-process (Flask test client) for setup and the HTTP calls, configured like
production: S3_SSE=s3 and REDIS_URL set, so jobs go through RQ. Every job runs
in a real `worker.py --burst` subprocess (it forks a work horse per job).

1. Erasure: a user (registered, consent granted over HTTP, a few real captures)
   plus --objects 1 KiB objects under `users/<id>/` (put concurrently, setup
   only). POST /api/v1/privacy/erasure, run the worker, poll GET
   /api/v1/privacy/erasure/<receipt_id> until completed: wall time (budget
   30 s). Baseline: the same number of objects for another user deleted one
   by one with `storage.delete(key)`; ratio baseline / erasure. Both prefixes
   are checked empty afterwards.
2. Export: a user with --captures captures of --capture-mb MB created through
   `captures.services.create_capture` (stripping + encryption, real objects),
   POST /api/v1/privacy/export, run the worker while sampling VmRSS of the
   worker and its work horse every 50 ms (plus their VmHWM): wall time, MB/s,
   peak RSS. Repeated with --small-captures captures: peak RSS must be flat.

Results also go to bench/results/privacy-<time>.json. Everything it starts is
stopped at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import MIB
from harness.client import expect
from harness.images import make_png, multipart
from harness.procfs import TreeSampler
from harness.results import busy_warning, load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    moto_server,
    prepare_services,
    rq_worker,
    s3_env,
    scratch,
)

S3_BUCKET = "irisvue-bench-privacy"
ERASURE_BUDGET_S = 30.0
FLAT_BUDGET = 1.25  # peak RSS with many captures / with few
SAMPLE_INTERVAL = 0.05
SMALL_OBJECT = b"x" * 1024
SETUP_THREADS = 8
WORKER_TIMEOUT_S = 1800


# --- setup -----------------------------------------------------------------------


def fresh_client(app: Any) -> Any:
    """A test client whose every request runs in an app context of its own.

    This script holds one app context for its SQL and storage calls; a request
    sent inside it would share its `g` with every other request (as no gunicorn
    request does), so per-request caches such as `current_user_id()` would leak
    from one account's request into the next one's.
    """
    from flask.testing import FlaskClient

    class Client(FlaskClient):
        def open(self, *args: Any, **kwargs: Any) -> Any:
            with self.application.app_context():
                return super().open(*args, **kwargs)

    return Client(app, app.response_class, use_cookies=True)


def make_user(client: Any) -> tuple[uuid.UUID, str, str]:
    """Registered and consented over HTTP, verified in SQL; returns (id, token, password)."""
    import sqlalchemy as sa

    from irisvue.extensions import db

    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = f"Bench-{uuid.uuid4().hex}"
    response = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    token = expect(response.status_code, response.get_json(), 201, "register")["access_token"]
    db.session.execute(
        sa.text("UPDATE users SET is_verified = true WHERE email = :email"), {"email": email}
    )
    user_id = db.session.execute(
        sa.text("SELECT id FROM users WHERE email = :email"), {"email": email}
    ).scalar_one()
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.get("/api/v1/consents/documents?type=biometric_capture&jurisdiction=generic")
    items = expect(response.status_code, response.get_json(), 200, "consent documents")["items"]
    if not items:
        raise SystemExit("bench: no biometric_capture consent text (did `flask release` run?)")
    consent = {
        "consent_type": "biometric_capture",
        "jurisdiction": "generic",
        "granted": True,
        "document_version": items[0]["version"],
    }
    response = client.post("/api/v1/consents/", json=consent, headers=headers)
    expect(response.status_code, response.get_json(), 201, "consent")
    return uuid.UUID(str(user_id)), token, password


def create_captures(app: Any, user_id: uuid.UUID, png: bytes, count: int) -> float:
    """`count` captures through the real service (stripping, encryption); returns seconds."""
    from irisvue.captures.services import create_capture
    from irisvue.captures.upload import UploadRequest

    body, content_type = multipart(png)

    def one(_: int) -> None:
        with app.app_context():
            request = UploadRequest(content_type, len(body), lambda: io.BytesIO(body))
            create_capture(str(user_id), request)

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def put_objects(storage: Any, prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}blobs/{index:06d}" for index in range(count)]

    def one(key: str) -> None:
        storage.put(key, io.BytesIO(SMALL_OBJECT), len(SMALL_OBJECT), "application/octet-stream")

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(one, keys))
    return keys


def remaining(storage: Any, prefix: str) -> int:
    listing = storage.client.list_objects(storage.bucket, prefix=prefix, recursive=True)
    return sum(1 for _ in listing)


def job_seconds(job_id: Any) -> float | None:
    from irisvue.extensions import db
    from irisvue.models import Job

    db.session.expire_all()
    job = db.session.get(Job, job_id)
    if job is None or job.started_at is None or job.finished_at is None:
        return None
    return (job.finished_at - job.started_at).total_seconds()


# --- 1. erasure ------------------------------------------------------------------


def erasure(app: Any, env: dict[str, str], workdir: Path, objects: int, png: bytes) -> dict:
    import sqlalchemy as sa

    from irisvue.extensions import db
    from irisvue.storage import get_storage

    client = fresh_client(app)
    storage = get_storage()
    user_id, token, password = make_user(client)
    create_captures(app, user_id, png, 3)
    prefix = f"users/{user_id}/"
    started = time.perf_counter()
    put_objects(storage, prefix, objects)
    setup_s = time.perf_counter() - started
    stored = remaining(storage, prefix)
    load = load_average()

    started = time.perf_counter()
    response = client.post(
        "/api/v1/privacy/erasure",
        json={"password": password},
        headers={"Authorization": f"Bearer {token}"},
    )
    receipt = expect(response.status_code, response.get_json(), 202, "erasure")["receipt_id"]
    status: dict = {}
    with rq_worker(env, workdir / "worker-erasure.log", burst=True) as proc:
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while time.monotonic() < deadline:
            response = client.get(f"/api/v1/privacy/erasure/{receipt}")
            status = expect(response.status_code, response.get_json(), 200, "erasure status")
            if status["status"] == "completed" or proc.poll() is not None:
                break
            time.sleep(0.1)
        erasure_s = time.perf_counter() - started
        proc.wait(60)
    if status.get("status") != "completed":
        raise SystemExit(f"bench: erasure did not complete: {status} (see worker-erasure.log)")
    job_id = db.session.execute(
        sa.text("SELECT job_id FROM privacy_requests WHERE receipt_id = :r"), {"r": receipt}
    ).scalar_one()
    job_s = job_seconds(job_id)
    left = remaining(storage, prefix)

    baseline_prefix = f"users/{uuid.uuid4()}/"
    keys = put_objects(storage, baseline_prefix, objects)
    started = time.perf_counter()
    for key in keys:
        storage.delete(key)
    baseline_s = time.perf_counter() - started
    baseline_left = remaining(storage, baseline_prefix)
    return {
        "objects": objects,
        "stored_before": stored,
        "setup_put_seconds": setup_s,
        "request_to_completed_seconds": erasure_s,
        "job_seconds": job_s,
        "deleted": status["deleted"],
        "remaining": left,
        "baseline_seconds": baseline_s,
        "baseline_remaining": baseline_left,
        "ratio": baseline_s / erasure_s,
        "load_average": load,
    }


# --- 2. export -------------------------------------------------------------------


def export(app: Any, env: dict[str, str], workdir: Path, captures: int, png: bytes) -> dict:
    from irisvue.extensions import db
    from irisvue.models import Job
    from irisvue.storage import get_storage

    client = fresh_client(app)
    user_id, token, _ = make_user(client)
    setup_s = create_captures(app, user_id, png, captures)
    load = load_average()
    response = client.post("/api/v1/privacy/export", headers={"Authorization": f"Bearer {token}"})
    job_id = uuid.UUID(expect(response.status_code, response.get_json(), 202, "export")["id"])
    started = time.perf_counter()
    with (
        rq_worker(env, workdir / "worker-export.log", burst=True) as proc,
        TreeSampler([proc.pid], SAMPLE_INTERVAL, reset_peaks=False) as tree,
    ):
        proc.wait(WORKER_TIMEOUT_S)
    wall_s = time.perf_counter() - started
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    if job is None or job.status != "finished":
        error = None if job is None else (job.status, job.error)
        raise SystemExit(f"bench: export job did not finish: {error} (see worker-export.log)")
    result = dict(job.result or {})
    job_s = job_seconds(job_id) or wall_s
    horses = tree.descendants(proc.pid)
    row = {
        "captures": captures,
        "capture_bytes": len(png),
        "setup_seconds": setup_s,
        "archive_bytes": result.get("size"),
        "archive_captures": result.get("captures"),
        "worker_wall_seconds": wall_s,
        "job_seconds": job_s,
        "mb_per_s": (result.get("size") or 0) / 1e6 / job_s,
        "worker_peak_rss_mib": tree.peak_mib(proc.pid),
        "horse_peak_rss_mib": max((tree.peak_mib(pid) for pid in horses), default=0.0),
        "horse_growth_mib": max(
            (tree.peak_mib(pid) - tree.first_kib.get(pid, 0) / 1024 for pid in horses), default=0.0
        ),
        "horses_seen": len(horses),
        "load_average": load,
    }
    get_storage().delete_prefix(f"users/{user_id}/")  # frees moto's memory for the next run
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000, help="objects of the erased user")
    parser.add_argument("--captures", type=int, default=100)
    parser.add_argument("--small-captures", type=int, default=10)
    parser.add_argument("--capture-mb", type=float, default=5.0)
    args = parser.parse_args(argv)

    exports: list[dict] = []
    try:
        with scratch("irisvue-bench-privacy-") as workdir, moto_server(workdir) as endpoint:
            upload_mb = max(20, int(args.capture_mb * 1e6 / MIB) + 4)
            env = app_env(workdir, 1, **s3_env(endpoint, S3_BUCKET), MAX_UPLOAD_MB=str(upload_mb))
            prepare_services(env, release=True)
            os.environ.update(env)
            from irisvue import create_app

            app = create_app()
            with app.app_context():
                small_png = make_png(20_000)
                erased = erasure(app, env, workdir, args.objects, small_png)
                png = make_png(int(args.capture_mb * 1e6))
                for count in (args.captures, args.small_captures):
                    exports.append(export(app, env, workdir, count, png))
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    report(args, erased, exports)
    return 0


def report(args: argparse.Namespace, erased: dict, exports: list[dict]) -> None:
    print(
        "privacy jobs, moto S3 on loopback (S3_SSE=s3), RQ via Redis, worker.py --burst; "
        f"load average at start {erased['load_average']}"
    )
    verdict = "met" if erased["request_to_completed_seconds"] <= ERASURE_BUDGET_S else "NOT met"
    clean = erased["remaining"] == 0 and erased["baseline_remaining"] == 0
    print(
        f"erasure of {erased['stored_before']} objects: request -> completed "
        f"{erased['request_to_completed_seconds']:.1f} s (job itself "
        f"{erased['job_seconds'] or 0:.1f} s; budget <= {ERASURE_BUDGET_S:.0f} s: {verdict}); "
        f"deleted {erased['deleted']}"
    )
    print(
        f"one-by-one storage.delete of {erased['objects']} objects: "
        f"{erased['baseline_seconds']:.1f} s; ratio {erased['ratio']:.1f}x "
        f"(setup put {erased['setup_put_seconds']:.1f} s); "
        f"left under both prefixes: {erased['remaining']} + {erased['baseline_remaining']} "
        f"({'clean' if clean else 'NOT clean'})"
    )
    for row in exports:
        print(
            f"export of {row['captures']} x {row['capture_bytes'] / 1e6:.1f} MB captures "
            f"(load average {row['load_average']}): archive {row['archive_bytes'] / 1e6:.0f} MB "
            f"({row['archive_captures']} captures), job {row['job_seconds']:.1f} s = "
            f"{row['mb_per_s']:.1f} MB/s, worker process {row['worker_wall_seconds']:.1f} s; "
            f"peak RSS work horse {row['horse_peak_rss_mib']:.0f} MiB "
            f"(+{row['horse_growth_mib']:.0f} MiB over its first sample), "
            f"worker {row['worker_peak_rss_mib']:.0f} MiB"
        )
    flat = None
    if len(exports) == 2:
        flat = exports[0]["horse_peak_rss_mib"] / max(exports[1]["horse_peak_rss_mib"], 1.0)
        verdict = "met" if flat <= FLAT_BUDGET else "NOT met"
        print(
            f"export peak RSS {exports[0]['captures']} vs {exports[1]['captures']} captures: "
            f"{flat:.2f}x (flat if <= {FLAT_BUDGET}: {verdict})"
        )
    busy_warning()
    path = write_results(
        "privacy",
        {"settings": vars(args), "erasure": erased, "export": exports, "export_rss_ratio": flat},
    )
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
