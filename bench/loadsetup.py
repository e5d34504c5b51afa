"""Setup and bookkeeping of bench/load.py: the RQ worker process, accounts, jobs, logs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import ROOT, database_url, expect, http_json


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def make_accounts(base: str, count: int, threads: int) -> tuple[list[dict], dict[str, int]]:
    """Registered (HTTP), verified (SQL), biometric consent granted (HTTP)."""
    import sqlalchemy as sa

    def register(_: int) -> dict:
        email = f"bench-load-{uuid.uuid4().hex[:12]}@example.com"
        password = f"Bench-{uuid.uuid4().hex}"
        body = {"email": email, "password": password}
        pair = expect(*http_json("POST", base + "/api/v1/auth/register", body), 201, "register")
        return {
            "email": email,
            "password": password,
            "access": pair["access_token"],
            "refresh": pair["refresh_token"],
        }

    with ThreadPoolExecutor(threads) as pool:
        accounts = list(pool.map(register, range(count)))
    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE users SET is_verified = true WHERE email = ANY(:emails)"),
            {"emails": [a["email"] for a in accounts]},
        )
    engine.dispose()
    versions = {}
    for kind in ("biometric_capture", "marketing"):
        url = f"{base}/api/v1/consents/documents?type={kind}&jurisdiction=generic"
        items = expect(*http_json("GET", url), 200, "consent documents")["items"]
        if not items:
            raise SystemExit(f"bench: no {kind} consent text (did `flask release` run?)")
        versions[kind] = items[0]["version"]

    def grant(account: dict) -> None:
        consent = {
            "consent_type": "biometric_capture",
            "jurisdiction": "generic",
            "granted": True,
            "document_version": versions["biometric_capture"],
        }
        headers = {"Authorization": f"Bearer {account['access']}"}
        expect(*http_json("POST", base + "/api/v1/consents/", consent, headers), 201, "consent")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(grant, accounts))
    return accounts, versions


def sql(query: str, **params: Any) -> list[tuple]:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(sa.text(query), params)]
    engine.dispose()
    return rows


def drain_jobs(since: float, timeout: float) -> dict[str, Any]:
    """Waits until the jobs created since `since` are final; counts them by kind and status."""
    query = (
        "SELECT kind, status, count(*) FROM jobs "
        "WHERE created_at >= to_timestamp(:since) GROUP BY kind, status"
    )
    started = time.monotonic()
    while True:
        rows = sql(query, since=since)
        pending = sum(n for _, status, n in rows if status in ("queued", "started"))
        if not pending or time.monotonic() - started > timeout:
            break
        time.sleep(1)
    counts: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        counts.setdefault(kind, {})[status] = n
    errors = sql(
        "SELECT kind, error FROM jobs WHERE created_at >= to_timestamp(:since) "
        "AND status = 'failed' LIMIT 5",
        since=since,
    )
    return {
        "by_kind": counts,
        "pending": pending,
        "drain_seconds": time.monotonic() - started,
        "failed_samples": [list(row) for row in errors],
    }


def log_errors(path: Path, limit: int = 8) -> list[str]:
    """Error lines and 5xx access lines of a JSON log (and any traceback line)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line or "Error" in line:
                found.append(line[:400])
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("level") in ("error", "critical") or int(entry.get("status") or 0) >= 500:
            found.append(line[:400])
        if len(found) >= limit:
            break
    return found
