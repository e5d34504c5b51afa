"""Accounts for a benchmark, set up over HTTP (verification alone goes through SQL)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import API, expect, http_json
from .stack import sql
from .wrk import lua_script

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


@dataclass(frozen=True)
class ScriptedAccount:
    """A fresh account and the wrk scripts that load the server as it."""

    account: dict[str, Any]  # see `register`
    bearer: dict[str, str]  # its Authorization header
    me: Path  # wrk script: GET with that header
    login: Path  # wrk script: POST of its email and password as JSON


def scripted_account(base: str, workdir: Path, prefix: str = "bench") -> ScriptedAccount:
    """A fresh account (`register`) whose access token GET /auth/me accepts, and the wrk
    scripts for /me and login written in `workdir` (me.lua, login.lua)."""
    account = register(base, prefix)
    bearer = {"Authorization": f"Bearer {account['access']}"}
    expect(*http_json("GET", f"{base}{API}/auth/me", None, bearer), 200, "GET /me")
    credentials = json.dumps({"email": account["email"], "password": account["password"]})
    return ScriptedAccount(
        account=account,
        bearer=bearer,
        me=lua_script(workdir / "me.lua", "GET", None, bearer),
        login=lua_script(
            workdir / "login.lua", "POST", credentials, {"Content-Type": "application/json"}
        ),
    )


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
