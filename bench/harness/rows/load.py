"""Rows of bench/load.py: the mixed load and the refresh storm."""

from __future__ import annotations

from ..loadgen import DEFAULT_MIX
from .format import Row, X, verdict


def load_rows(r: dict) -> list[Row]:
    load, storm, solo, checks = r["load"], r["storm"], r["solo_p50_ms"], r["verdicts"]
    s = r["settings"]
    endpoints = load["endpoints"]
    latencies = ", ".join(
        f"{name} {row['p50_ms']:.0f}/{row['p99_ms']:.0f}" for name, row in endpoints.items()
    )
    # Weighted by each endpoint's share of the requests, like the load itself.
    inflation = sum(row["requests"] * row["p50_ms"] for row in endpoints.values()) / max(
        sum(row["requests"] * solo.get(name, 0.0) for name, row in endpoints.items()), 1e-9
    )
    share = load["cpu_share_of_one_core"]
    workers = [v for k, v in load["peak_rss_mib"].items() if k.startswith("worker ")]
    others = {k: v for k, v in load["peak_rss_mib"].items() if not k.startswith("worker ")}
    twins = f"{storm['twin_sessions']} held by two clients"
    lost = r.get("after_withdrawal_captures", {})
    lost_note = (
        f"; {lost['404']} of {sum(lost.values())} captures uploaded after a withdrawal and "
        "re-grant later destroyed by that withdrawal's job"
        if lost.get("404")
        else ""
    )
    extra = f" with {', '.join(s['set'])}" if s.get("set") else ""
    if s.get("mix", DEFAULT_MIX) != DEFAULT_MIX:
        extra += f", mix {s['mix']}"
    return [
        (
            f"mixed load, {s['concurrency']} users {X} {load['seconds']:.0f} s "
            "(login, refresh, /me, consent read/write/withdraw, "
            f"{s['png_kb']} KiB uploads; RQ worker on){extra}",
            f"**{load['requests_per_s']:.0f} req/s**; 5xx {load['status_5xx']}, 429 "
            f"{load['status_429']}, other unexpected "
            f"{load['unexpected'] - load['status_5xx'] - load['status_429']}; "
            f"CPU: server {share['server']:.2f}, client {share['client']:.2f} cores{lost_note}",
            "zero 5xx, no 429",
            verdict(checks["no 5xx under load"] and checks["no 429 under load"]),
        ),
        (
            "latency under that load, p50/p99 ms",
            f"{latencies}; p50 = **{inflation:.1f}{X}** the same requests sent alone",
            "—",
            "",
        ),
        (
            "peak RSS under that load (VmHWM)",
            "workers "
            + " / ".join(f"{v:.0f}" for v in workers)
            + " MiB; "
            + ", ".join(f"{k} {v:.0f}" for k, v in others.items())
            + f" MiB; worker replaced: {load['worker_replaced']}",
            "≤ 300 MiB per worker",
            verdict(max(workers, default=0) <= 300 and not load["worker_replaced"]),
        ),
        (
            f"refresh storm: {storm['sessions']} sessions ({twins}) {X} "
            f"{len(storm['rounds'])} rounds at once",
            f"false revocations **{storm['false_revocations']}**, diverging pairs "
            f"{storm['divergent_pairs']}, 5xx {storm['status_5xx']}; p99 "
            f"{max(x['p99_ms'] for x in storm['rounds']):.0f} ms",
            "zero",
            verdict(
                checks["storm: no 5xx"]
                and checks["storm: no false revocation"]
                and checks["storm: twins got the same pair"]
            ),
        ),
    ]
