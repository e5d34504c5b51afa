"""Accounts for a benchmark, set up over HTTP (verification alone goes through SQL)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .client import API, expect, http_json
from .stack import sql

CONSENT_TYPES = ("biometric_capture", "marketing")


def register(base: str, prefix: str = "bench") -> dict[str, Any]:
    """A fresh account; returns its email, password, access and refresh tokens."""
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    password = f"Bench-{uuid.uuid4().hex}"
    body = {"email": email, "password": password}
    pair = expect(*http_json("POST", f"{base}{API}/auth/register", body), 201, "register")
    return {
        "email": email,
        "password": password,
        "access": pair["access_token"],
        "refresh": pair["refresh_token"],
    }


def consent_versions(base: str) -> dict[str, int]:
    """Consent type -> current document version (the texts `flask release` loads)."""
    versions = {}
    for kind in CONSENT_TYPES:
        url = f"{base}{API}/consents/documents?type={kind}&jurisdiction=generic"
        items = expect(*http_json("GET", url), 200, "consent documents")["items"]
        if not items:
            raise SystemExit(f"bench: no {kind} consent text (did `flask release` run?)")
        versions[kind] = items[0]["version"]
    return versions


def make_accounts(
    base: str, count: int, threads: int, prefix: str = "bench"
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Registered (HTTP), verified (SQL), biometric consent granted (HTTP); returns the
    accounts (see `register`) and the current consent versions."""
    with ThreadPoolExecutor(threads) as pool:
        accounts = list(pool.map(lambda _: register(base, prefix), range(count)))
    sql(
        "UPDATE users SET is_verified = true WHERE email = ANY(:emails)",
        emails=[a["email"] for a in accounts],
    )
    versions = consent_versions(base)

    def grant(account: dict) -> None:
        consent = {
            "consent_type": "biometric_capture",
            "jurisdiction": "generic",
            "granted": True,
            "document_version": versions["biometric_capture"],
        }
        headers = {"Authorization": f"Bearer {account['access']}"}
        expect(*http_json("POST", f"{base}{API}/consents/", consent, headers), 201, "consent")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(grant, accounts))
    return accounts, versions
