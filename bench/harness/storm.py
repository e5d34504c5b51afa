"""The refresh storm (bench/load.py's last phase, bench/storm.py alone): many sessions
refreshing at once, some twice.

Every client holds one session's newest pair. In each round all clients send
POST /api/v1/auth/refresh at the same instant (a barrier, connections opened
beforehand); for a `--storm-duplicates` share of the sessions a second client
holds the same refresh token and sends it too, after a random delay inside
the grace window (SPEC §3: the loser gets the winner's pair, the session
lives). A legitimate client is never refused: any 401 is a false revocation.
Afterwards every client refreshes its newest token once more, one after
another, and reads /me with the new access token: all must be 200.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .client import API, Connection
from .loadgen import percentile
from .stack import sql


class Client:
    def __init__(self, session: int, access: str, refresh: str, delay: float) -> None:
        self.session, self.access, self.refresh, self.delay = session, access, refresh, delay
        self.result: tuple[Any, bytes, float] = ("not sent", b"", 0.0)


def _refresh(conn: Connection, token: str) -> tuple[Any, bytes, float]:
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "irisvue-bench-storm"}
    try:
        return conn.request("POST", API + "/auth/refresh", None, headers)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, b"", 0.0


def _fire(base: str, clients: list[Client]) -> float:
    barrier = threading.Barrier(len(clients) + 1)

    def one(client: Client) -> None:
        conn = Connection(base)
        try:
            conn.connect()
        finally:
            barrier.wait()
        if client.delay:
            time.sleep(client.delay)
        client.result = _refresh(conn, client.refresh)
        conn.close()

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def storm_round(base: str, clients: list[Client]) -> dict[str, Any]:
    """All clients at once; updates each client's pair from its answer."""
    seconds = _fire(base, clients)
    statuses: Counter = Counter()
    false_revocations, divergent, samples = 0, 0, []
    by_session: dict[int, list[Client]] = {}
    for client in clients:
        status, raw, _ = client.result
        statuses[str(status)] += 1
        by_session.setdefault(client.session, []).append(client)
        if status == 200:
            pair = json.loads(raw)
            client.access, client.refresh = pair["access_token"], pair["refresh_token"]
        else:
            false_revocations += status == 401
            if len(samples) < 10:
                samples.append({"status": status, "body": raw[:300].decode(errors="replace")})
    for group in by_session.values():
        # Twins must end up holding the same pair, or the next refresh of one kills both.
        divergent += len({c.refresh for c in group if c.result[0] == 200}) > 1
    latencies = sorted(c.result[2] for c in clients if isinstance(c.result[0], int))
    return {
        "requests": len(clients),
        "seconds": seconds,
        "requests_per_s": len(clients) / seconds,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "statuses": dict(statuses),
        "status_5xx": sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500),
        "false_revocations": false_revocations,
        "divergent_pairs": divergent,
        "samples": samples,
    }


def verify(base: str, clients: list[Client]) -> dict[str, Any]:
    """Each client, one after another: refresh its newest token, then GET /me with the result."""
    conn = Connection(base)
    refused: Counter = Counter()
    samples = []
    for client in clients:
        status, raw, _ = _refresh(conn, client.refresh)
        if status == 200:
            access = json.loads(raw)["access_token"]
            headers = {"Authorization": f"Bearer {access}"}
            try:
                status, raw, _ = conn.request("GET", API + "/auth/me", None, headers)
            except (OSError, http.client.HTTPException) as exc:
                status, raw = type(exc).__name__, b""
        if status != 200:
            refused[str(status)] += 1
            if len(samples) < 10:
                samples.append({"status": status, "body": raw[:300].decode(errors="replace")})
    conn.close()
    return {"clients": len(clients), "refused": dict(refused), "samples": samples}


def open_sessions(base: str, accounts: list[dict], count: int, threads: int) -> list[dict]:
    """`count` fresh sessions (POST /login, round-robin over the accounts): setup only."""

    def one(index: int) -> dict:
        account = accounts[index % len(accounts)]
        conn = Connection(base)
        body = json.dumps({"email": account["email"], "password": account["password"]}).encode()
        try:
            status, raw, _ = conn.request(
                "POST", API + "/auth/login", body, {"Content-Type": "application/json"}
            )
        finally:
            conn.close()
        if status != 200:
            raise SystemExit(f"bench: storm setup login answered {status}: {raw[:300]!r}")
        return json.loads(raw)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def refresh_storm(
    base: str, pairs: list[dict], duplicates: float, rounds: int, spread: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    twins = set(rng.sample(range(len(pairs)), round(duplicates * len(pairs))))
    clients = []
    for index, pair in enumerate(pairs):
        clients.append(Client(index, pair["access_token"], pair["refresh_token"], 0.0))
        if index in twins:
            # Same token, sent at once or a little later, always well inside the grace window.
            delay = rng.choice([0.0, rng.uniform(0.0, spread)])
            clients.append(Client(index, pair["access_token"], pair["refresh_token"], delay))
    results = []
    for _ in range(rounds):
        results.append(storm_round(base, clients))
        time.sleep(0.5)
    checked = verify(base, clients)
    return {
        "sessions": len(pairs),
        "twin_sessions": len(twins),
        "clients": len(clients),
        "rounds": results,
        "verify": checked,
        "false_revocations": sum(r["false_revocations"] for r in results)
        + checked["refused"].get("401", 0),
        "verify_refused": sum(checked["refused"].values()),
        "divergent_pairs": sum(r["divergent_pairs"] for r in results),
        "status_5xx": sum(r["status_5xx"] for r in results)
        + sum(n for s, n in checked["refused"].items() if s.isdigit() and int(s) >= 500),
    }


def run_storm(
    base: str,
    accounts: list[dict],
    sessions: int,
    threads: int,
    duplicates: float,
    rounds: int,
    spread: float,
    seed: int = 7,
) -> dict[str, Any]:
    """`sessions` fresh logins over `accounts`, then the storm; adds `db_refresh_reused`
    (sessions the database revoked as refresh_reused meanwhile: must be 0)."""
    started = time.time()
    pairs = open_sessions(base, accounts, sessions, threads)
    result = refresh_storm(base, pairs, duplicates, rounds, spread, seed=seed)
    result["db_refresh_reused"] = sql(
        "SELECT count(*) FROM sessions WHERE revoked_reason = 'refresh_reused' "
        "AND revoked_at >= to_timestamp(:since)",
        since=started,
    )[0][0]
    return result


def checks(storm: dict[str, Any]) -> dict[str, bool]:
    return {
        "storm: no 5xx": storm["status_5xx"] == 0,
        "storm: no false revocation": storm["false_revocations"] == 0
        and storm["verify_refused"] == 0
        and storm["db_refresh_reused"] == 0,
        "storm: twins got the same pair": storm["divergent_pairs"] == 0,
    }


def describe(storm: dict[str, Any]) -> list[str]:
    """The storm's figures as printed lines."""
    lines = [
        f"refresh storm: {storm['sessions']} sessions, {storm['twin_sessions']} held by two "
        f"clients ({storm['clients']} clients), {len(storm['rounds'])} rounds"
    ]
    for index, row in enumerate(storm["rounds"], 1):
        lines.append(
            f"  round {index}: {row['requests']} refreshes in {row['seconds']:.2f} s "
            f"({row['requests_per_s']:.0f}/s), p50 {row['p50_ms']:.0f} ms, p99 "
            f"{row['p99_ms']:.0f} ms; statuses {row['statuses']}; false revocations "
            f"{row['false_revocations']}, diverging twin pairs {row['divergent_pairs']}"
        )
        if row["samples"]:
            lines.append(f"    {row['samples'][:3]}")
    checked = storm["verify"]
    lines.append(
        f"  afterwards each of {checked['clients']} clients refreshed its newest token and "
        f"read /me: refused {checked['refused'] or 0}; sessions revoked as "
        f"refresh_reused in the DB: {storm['db_refresh_reused']}"
    )
    return lines
