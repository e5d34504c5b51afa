"""Benchmark: sustained mixed load, then a refresh storm, against the production setup.

    .venv/bin/python bench/load.py [--duration 180] [--concurrency 32] [--storm-sessions 200]

Loopback only: moto's S3 server, gunicorn with gunicorn.conf.py (2 workers,
access log on), a real RQ worker (`python worker.py`, with its cron process),
PostgreSQL and Redis as the other bench scripts (scratch DB migrated with
`flask release`). Rate limits are OFF (RATELIMIT_ENABLED=false, as every
bench script): all clients share 127.0.0.1, so the per-IP login limit would
answer 429 to a load that is no attack; per-account limits never trigger
because every virtual user has its own account.

1. Setup: --concurrency accounts registered over HTTP, verified in SQL,
   biometric consent granted over HTTP. Baseline: every operation sent alone
   by one client (--solo-repeats times), p50 per endpoint.
2. Load: --concurrency virtual users, one thread and one keep-alive
   connection each, closed loop for --duration s over the --mix (login,
   refresh, /me, consent read, consent write = marketing toggle, withdraw =
   biometric withdrawal (queues destruction) + re-grant, upload of a small
   PNG). Per endpoint: req/s, p50/p99, statuses. Peak memory (VmHWM reset at
   the start, plus VmRSS sampled every 100 ms) of the arbiter, each worker,
   the RQ worker, its cron process and its work horses; CPU of the server,
   the RQ worker and this client (all threads of this process). Then the jobs
   the load queued are drained and counted, and the captures each user
   uploaded after its latest withdrawal are read back.
3. Refresh storm: --storm-sessions fresh sessions (logins, setup), a
   --storm-duplicates share of them held by two clients; --storm-rounds
   rounds of everybody refreshing at once (see bench/storm.py). Must be: no
   false revocation, no diverging pair, no 5xx.

Results also go to bench/results/load-<time>.json. Everything it starts is
stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from harness import storm
from harness.images import make_png
from harness.loadgen import (
    DEFAULT_MIX,
    EXPECTED,
    Stats,
    VirtualUser,
    parse_mix,
    run_users,
    solo_latencies,
)
from harness.procfs import TreeSampler, children, cpu_seconds, title
from harness.results import busy_warning, load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    drain_jobs,
    free_port,
    gunicorn,
    log_errors,
    moto_server,
    prepare_services,
    rq_worker,
    s3_bucket,
    s3_env,
    scratch,
    wait_workers,
)
from harness.users import make_accounts

S3_BUCKET = "irisvue-bench-load"
RSS_BUDGET_MIB = 300  # SPEC §7: a worker's peak RSS (stated for logins; held to it here too)


def load_phase(base: str, arbiter: int, worker: int, users: list, args: Any) -> dict[str, Any]:
    mix = parse_mix(args.mix)
    workers_before = children(arbiter)
    # The RQ worker's long-lived children (its cron process, RQ's scheduler); any
    # later child is a work horse (one fork per job).
    helpers = {pid: title(pid) for pid in children(worker)}
    cpu0 = {"server": cpu_seconds(arbiter), "rq_worker": cpu_seconds(worker)}
    client0 = time.process_time()
    with TreeSampler([arbiter, worker]) as tree:
        elapsed = run_users(users, args.duration, mix)
    client_cpu = time.process_time() - client0 - tree.sampler_cpu_seconds
    cpu = {
        "server": cpu_seconds(arbiter) - cpu0["server"],
        "rq_worker": cpu_seconds(worker) - cpu0["rq_worker"],
        "client": client_cpu,
        "memory_sampler": tree.sampler_cpu_seconds,
    }
    stats = Stats()
    for user in users:
        stats.merge(user.stats)
    summary = stats.summary(elapsed)
    horses = [pid for pid in tree.descendants(worker) if pid not in helpers]
    workers_after = children(arbiter)
    return {
        **summary,
        "seconds": elapsed,
        "mix": mix,
        "cpu_seconds": cpu,
        "cpu_share_of_one_core": {name: value / elapsed for name, value in cpu.items()},
        "client_cpu_ms_per_request": client_cpu / max(summary["requests"], 1) * 1000,
        "server_cpu_ms_per_request": cpu["server"] / max(summary["requests"], 1) * 1000,
        "peak_rss_mib": {
            "arbiter": tree.peak_mib(arbiter),
            **{f"worker {pid}": tree.peak_mib(pid) for pid in tree.descendants(arbiter)},
            "rq_worker": tree.peak_mib(worker),
            **{f"rq child {pid}": tree.peak_mib(pid) for pid in helpers if tree.peak_mib(pid)},
            "rq work horses (max)": max((tree.peak_mib(p) for p in horses), default=0.0),
        },
        "rq_children": helpers,
        "horses_seen": len(horses),
        "workers_before": workers_before,
        "workers_after": workers_after,
        "worker_replaced": workers_before != workers_after,
        "false_revocations": sum(u.false_revocations for u in users),
        "relogins_after_401": sum(u.relogins for u in users),
        "load_average_after": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=180, help="seconds of mixed load")
    parser.add_argument("--concurrency", type=int, default=32, help="virtual users = accounts")
    parser.add_argument("--mix", default=DEFAULT_MIX, help="operation=weight,...")
    parser.add_argument("--png-kb", type=int, default=64, help="size of each uploaded PNG")
    parser.add_argument("--solo-repeats", type=int, default=20)
    parser.add_argument("--storm-sessions", type=int, default=200)
    parser.add_argument("--storm-duplicates", type=float, default=0.25)
    parser.add_argument("--storm-rounds", type=int, default=3)
    parser.add_argument("--storm-spread", type=float, default=2.0, help="max twin delay, s")
    parser.add_argument("--setup-threads", type=int, default=4)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra app setting for gunicorn and the RQ worker, e.g. RATELIMIT_ENABLED=true",
    )
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)

    result: dict[str, Any] = {"settings": vars(args), "load_average_start": load_average()}
    try:
        with scratch("irisvue-bench-load-") as workdir, moto_server(workdir) as endpoint:
            env = app_env(workdir, args.workers, **s3_env(endpoint, S3_BUCKET), **extra)
            prepare_services(env, release=True)
            s3_bucket(endpoint, S3_BUCKET)
            png = make_png(args.png_kb * 1024)
            with (
                rq_worker(env, workdir / "worker.log") as worker_proc,
                gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as (base, pid),
            ):
                wait_workers(pid, args.workers, base + "/health")
                setup_started = time.monotonic()
                accounts, versions = make_accounts(
                    base, args.concurrency + 1, args.setup_threads, prefix="bench-load"
                )
                result["setup_seconds"] = time.monotonic() - setup_started
                solo = VirtualUser(base, accounts.pop(), versions, png)
                solo_started = time.time()
                result["solo_p50_ms"] = solo_latencies(solo, args.solo_repeats)
                result["solo_statuses"] = {
                    name: dict(counts) for name, counts in solo.stats.statuses.items()
                }
                # Its destruction jobs done first: any RQ child from here on is a work horse.
                drain_jobs(solo_started, args.drain_timeout)
                users = [VirtualUser(base, account, versions, png) for account in accounts]
                since = time.time()
                result["load"] = load_phase(base, pid, worker_proc.pid, users, args)
                result["jobs"] = drain_jobs(since, args.drain_timeout)
                survivors: dict[str, int] = {}
                for user in users:
                    for status, n in user.survivors().items():
                        survivors[status] = survivors.get(status, 0) + n
                result["after_withdrawal_captures"] = survivors
                result["storm"] = storm.run_storm(
                    base,
                    accounts,
                    args.storm_sessions,
                    args.setup_threads,
                    args.storm_duplicates,
                    args.storm_rounds,
                    args.storm_spread,
                )
                result["storm"]["workers_after"] = children(pid)
            result["log_errors"] = {
                "gunicorn": log_errors(workdir / "irisvue.log"),
                "rq_worker": log_errors(workdir / "worker.log"),
            }
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    return report(args, result)


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    load = result["load"]
    worker_peaks = [v for k, v in load["peak_rss_mib"].items() if k.startswith("worker ")]
    return {
        "no 5xx under load": load["status_5xx"] == 0 and not load["socket_errors"],
        "no 429 under load": load["status_429"] == 0,
        "no unexpected status under load": load["unexpected"] == 0,
        "no refresh refused under load": load["false_revocations"] == 0,
        f"gunicorn worker peak RSS <= {RSS_BUDGET_MIB} MiB": max(worker_peaks, default=0)
        <= RSS_BUDGET_MIB,
        "no gunicorn worker replaced": not load["worker_replaced"]
        and result["storm"]["workers_after"] == load["workers_after"],
        "every queued job finished": result["jobs"]["pending"] == 0
        and all(set(s) <= {"finished"} for s in result["jobs"]["by_kind"].values()),
        **storm.checks(result["storm"]),
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
    for line in storm.describe(result["storm"]):
        print(line)
    for name, lines in result["log_errors"].items():
        for line in lines:
            print(f"{name} log: {line}")
    checks = verdicts(result)
    print("checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in checks.items()))
    busy_warning()
    path = write_results("load", {**result, "verdicts": checks})
    print(f"results: {path}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
