"""The client side of bench/load.py: virtual users on keep-alive connections, per-endpoint stats.

One thread per virtual user, each with its own account, token pair and
http.client connection (keep-alive), in a closed loop: pick an operation by
weight, send it, record (endpoint, status, seconds). Nothing is shared between
threads while they run; the stats are merged afterwards.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .client import API, Connection
from .images import multipart

# Expected status of each endpoint; anything else is counted as an error.
EXPECTED = {
    "login": 200,
    "refresh": 200,
    "me": 200,
    "consent_read": 200,
    "consent_write": 201,
    "withdraw": 202,
    "consent_grant": 201,
    "upload": 201,
}
DEFAULT_MIX = "me=40,consent_read=15,refresh=15,consent_write=10,upload=10,withdraw=2,login=1"


def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in EXPECTED or name.strip() == "consent_grant":
            raise SystemExit(f"bench: unknown operation {name!r} in --mix")
        mix[name.strip()] = float(weight)
    return mix


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[dict[str, Any]] = field(default_factory=list)  # first unexpected answers
    socket_errors: Counter = field(default_factory=Counter)

    def record(self, name: str, status: int, seconds: float, raw: bytes) -> None:
        self.latencies[name].append(seconds)
        self.statuses[name][status] += 1
        if status != EXPECTED[name] and len(self.samples) < 20:
            self.samples.append({"endpoint": name, "status": status, "body": raw[:300].decode()})

    def merge(self, other: Stats) -> None:
        for name, values in other.latencies.items():
            self.latencies[name].extend(values)
        for name, counts in other.statuses.items():
            self.statuses[name].update(counts)
        self.samples.extend(other.samples[: max(0, 20 - len(self.samples))])
        self.socket_errors.update(other.socket_errors)

    def summary(self, seconds: float) -> dict[str, Any]:
        rows = {}
        for name in sorted(self.latencies, key=lambda n: -len(self.latencies[n])):
            values = sorted(self.latencies[name])
            rows[name] = {
                "requests": len(values),
                "requests_per_s": len(values) / seconds,
                "p50_ms": percentile(values, 0.50) * 1000,
                "p99_ms": percentile(values, 0.99) * 1000,
                "max_ms": values[-1] * 1000,
                "statuses": dict(sorted(self.statuses[name].items())),
                "errors": sum(c for s, c in self.statuses[name].items() if s != EXPECTED[name]),
            }
        total = Counter()
        for counts in self.statuses.values():
            total.update(counts)
        return {
            "endpoints": rows,
            "requests": sum(total.values()),
            "requests_per_s": sum(total.values()) / seconds,
            "statuses": dict(sorted(total.items())),
            "status_5xx": sum(c for s, c in total.items() if s >= 500),
            "status_429": total.get(429, 0),
            "unexpected": sum(row["errors"] for row in rows.values()),
            "socket_errors": dict(self.socket_errors),
            "samples": self.samples,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class VirtualUser:
    """One account in a closed loop over the operations of the mix."""

    def __init__(self, base: str, account: dict[str, Any], versions: dict, png: bytes) -> None:
        self.conn = Connection(base)
        self.account = account  # email, password, access, refresh
        self.versions = versions  # consent type -> current document version
        self.upload_body, self.upload_type = multipart(png)
        self.stats = Stats()
        self.marketing = False
        self.false_revocations = 0  # a refresh of this client's newest token refused
        self.relogins = 0
        self.withdrawals = 0
        self.since_withdrawal: list[str] = []  # captures uploaded after the latest withdrawal

    def _send(self, name: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = {"User-Agent": "irisvue-bench-load"}
        token = kw.get("token", self.account.get("access"))
        if token and name != "login":
            headers["Authorization"] = f"Bearer {token}"
        raw_body = kw.get("raw")
        if raw_body is None and body is not None:
            raw_body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif raw_body is not None:
            headers["Content-Type"] = kw["content_type"]
        try:
            status, raw, seconds = self.conn.request(method, API + path, raw_body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.stats.socket_errors[f"{name}: {type(exc).__name__}"] += 1
            return None
        self.stats.record(name, status, seconds, raw)
        if status == 401 and name != "login":
            if name == "refresh":
                self.false_revocations += 1
            self.login()  # carry on with a fresh session; the 401 is already counted
            return None
        if status != EXPECTED[name]:
            return None
        return json.loads(raw) if raw else {}

    def login(self) -> None:
        body = {"email": self.account["email"], "password": self.account["password"]}
        pair = self._send("login", "POST", "/auth/login", body)
        if pair:
            self.account.update(access=pair["access_token"], refresh=pair["refresh_token"])
            self.relogins += 1

    def refresh(self) -> None:
        pair = self._send("refresh", "POST", "/auth/refresh", token=self.account["refresh"])
        if pair:
            self.account.update(access=pair["access_token"], refresh=pair["refresh_token"])

    def me(self) -> None:
        self._send("me", "GET", "/auth/me")

    def consent_read(self) -> None:
        self._send("consent_read", "GET", "/consents/")

    def _consent(self, name: str, consent_type: str, granted: bool) -> Any:
        body = {
            "consent_type": consent_type,
            "jurisdiction": "generic",
            "granted": granted,
            "document_version": self.versions[consent_type],
        }
        return self._send(name, "POST", "/consents/", body)

    def consent_write(self) -> None:
        self.marketing = not self.marketing
        self._consent("consent_write", "marketing", self.marketing)

    def withdraw(self) -> None:
        """Withdraw biometric consent (queues destruction), then grant it again."""
        if self._send("withdraw", "POST", "/consents/biometric_capture/withdraw", {}):
            self.withdrawals += 1
            self.since_withdrawal = []
        self._consent("consent_grant", "biometric_capture", True)

    def upload(self) -> None:
        created = self._send(
            "upload",
            "POST",
            "/captures/",
            raw=self.upload_body,
            content_type=self.upload_type,
        )
        if created and self.withdrawals:
            self.since_withdrawal.append(created["id"])

    def run(self, deadline: float, mix: dict[str, float], seed: int) -> None:
        rng = random.Random(seed)
        names, weights = list(mix), list(mix.values())
        while time.monotonic() < deadline:
            getattr(self, rng.choices(names, weights)[0])()
        self.conn.close()

    def survivors(self) -> dict[str, int]:
        """Captures uploaded after the latest withdrawal (and its re-grant): still readable?"""
        outcome: Counter = Counter()
        for capture_id in self.since_withdrawal:
            headers = {"Authorization": f"Bearer {self.account['access']}"}
            try:
                status, _, _ = self.conn.request(
                    "GET", f"{API}/captures/{capture_id}/content", None, headers
                )
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__  # type: ignore[assignment]
            outcome[str(status)] += 1
        self.conn.close()
        return dict(outcome)


def run_users(users: list[VirtualUser], seconds: float, mix: dict[str, float]) -> float:
    """Runs every user for `seconds`; returns the wall time from start to the last finish."""
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=user.run, args=(deadline, mix, index), daemon=True)
        for index, user in enumerate(users)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def solo_latencies(user: VirtualUser, repeats: int) -> dict[str, float]:
    """p50 ms of each operation sent alone, one after another (the unloaded baseline)."""
    for name in ("me", "consent_read", "refresh", "consent_write", "upload", "withdraw"):
        for _ in range(repeats):
            getattr(user, name)()
    for _ in range(max(2, repeats // 4)):
        user.login()
    user.conn.close()
    return {name: statistics.median(values) * 1000 for name, values in user.stats.latencies.items()}
