"""Prints bench/load.py's figures and writes bench/results/load-<time>.json."""

from __future__ import annotations

import argparse
import os
from typing import Any

from common import busy_warning, write_results
from loadgen import EXPECTED

RSS_BUDGET_MIB = 300  # SPEC §7: a worker's peak RSS (stated for logins; held to it here too)


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    load, storm = result["load"], result["storm"]
    worker_peaks = [v for k, v in load["peak_rss_mib"].items() if k.startswith("worker ")]
    return {
        "no 5xx under load": load["status_5xx"] == 0 and not load["socket_errors"],
        "no 429 under load": load["status_429"] == 0,
        "no unexpected status under load": load["unexpected"] == 0,
        "no refresh refused under load": load["false_revocations"] == 0,
        f"gunicorn worker peak RSS <= {RSS_BUDGET_MIB} MiB": max(worker_peaks, default=0)
        <= RSS_BUDGET_MIB,
        "no gunicorn worker replaced": not load["worker_replaced"]
        and storm["workers_after"] == load["workers_after"],
        "every queued job finished": result["jobs"]["pending"] == 0
        and all(set(s) <= {"finished"} for s in result["jobs"]["by_kind"].values()),
        "storm: no 5xx": storm["status_5xx"] == 0,
        "storm: no false revocation": storm["false_revocations"] == 0
        and storm["verify_refused"] == 0
        and storm["db_refresh_reused"] == 0,
        "storm: twins got the same pair": storm["divergent_pairs"] == 0,
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> int:
    load = result["load"]
    solo = result["solo_p50_ms"]
    settings = f", app settings {args.set}" if args.set else ""
    print(
        f"mixed load: {args.concurrency} virtual users (one account and keep-alive connection "
        f"each), {load['seconds']:.0f} s, gunicorn.conf.py with {args.workers} workers + "
        f"worker.py, moto S3, rate limits off{settings}; {os.cpu_count()} CPUs; load average "
        f"{result['load_average_start']} at start, {load['load_average_after']} after"
    )
    print(
        f"total {load['requests']} requests = {load['requests_per_s']:.1f} req/s; "
        f"statuses {load['statuses']}; socket errors {load['socket_errors'] or 0}"
    )
    print(
        f"{'endpoint':<14} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'alone p50':>9} {'x alone':>7}  statuses"
    )
    for name, row in load["endpoints"].items():
        alone = solo.get(name, 0.0)
        ratio = row["p50_ms"] / alone if alone else 0.0
        print(
            f"{name:<14} {row['requests_per_s']:>7.1f} {row['p50_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {row['max_ms']:>8.0f} {alone:>9.1f} {ratio:>7.1f}  "
            f"{row['statuses']}"
        )
    solo_unexpected = {
        name: counts
        for name, counts in result["solo_statuses"].items()
        if set(counts) != {str(EXPECTED[name])} and set(counts) != {EXPECTED[name]}
    }
    if solo_unexpected:
        print(f"unexpected statuses when sent alone: {solo_unexpected}")
    share = load["cpu_share_of_one_core"]
    print(
        f"CPU (share of one core): gunicorn {share['server']:.2f}, RQ worker "
        f"{share['rq_worker']:.2f}, this client {share['client']:.2f} (+ memory sampler "
        f"{share['memory_sampler']:.2f}) "
        f"({load['client_cpu_ms_per_request']:.2f} ms/request; server "
        f"{load['server_cpu_ms_per_request']:.2f} ms/request)"
    )
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in load["peak_rss_mib"].items())
    print(
        f"peak RSS MiB (VmHWM reset at start + 100 ms VmRSS samples): {peaks}; "
        f"{load['horses_seen']} work horses seen; worker replaced: {load['worker_replaced']}"
    )
    print(f"RQ worker children at start: {load['rq_children']}")
    jobs = result["jobs"]
    print(
        f"jobs queued by the load: {jobs['by_kind']}, pending after "
        f"{jobs['drain_seconds']:.0f} s drain: {jobs['pending']}"
        + (f"; failed: {jobs['failed_samples']}" if jobs["failed_samples"] else "")
    )
    survivors = result["after_withdrawal_captures"]
    print(
        "captures uploaded after a user's latest withdrawal and re-grant (both answered), "
        f"GET .../content once the jobs finished: {survivors or 'none'}"
        + (
            " (404: destroyed by the job of the earlier withdrawal, which ran after the "
            "re-grant and the upload)"
            if survivors.get("404")
            else ""
        )
    )
    if load["samples"]:
        print(f"unexpected answers (first {len(load['samples'])}): {load['samples'][:5]}")
    storm = result["storm"]
    print(
        f"refresh storm: {storm['sessions']} sessions, {storm['twin_sessions']} held by two "
        f"clients ({storm['clients']} clients), {len(storm['rounds'])} rounds"
    )
    for index, row in enumerate(storm["rounds"], 1):
        print(
            f"  round {index}: {row['requests']} refreshes in {row['seconds']:.2f} s "
            f"({row['requests_per_s']:.0f}/s), p50 {row['p50_ms']:.0f} ms, p99 "
            f"{row['p99_ms']:.0f} ms; statuses {row['statuses']}; false revocations "
            f"{row['false_revocations']}, diverging twin pairs {row['divergent_pairs']}"
        )
        if row["samples"]:
            print(f"    {row['samples'][:3]}")
    checked = storm["verify"]
    print(
        f"  afterwards each of {checked['clients']} clients refreshed its newest token and "
        f"read /me: refused {checked['refused'] or 0}; sessions revoked as "
        f"refresh_reused in the DB: {storm['db_refresh_reused']}"
    )
    for name, lines in result["log_errors"].items():
        for line in lines:
            print(f"{name} log: {line}")
    checks = verdicts(result)
    print("checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in checks.items()))
    busy_warning()
    path = write_results("load", {**result, "verdicts": checks})
    print(f"results: {path}")
    return 0 if all(checks.values()) else 1
