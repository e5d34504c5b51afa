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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    app_env,
    check_redis,
    database_url,
    free_port,
    gunicorn,
    load_average,
    moto_server,
    prepare_database,
    redis_url,
    stop_group,
    wait_workers,
    worker_pids,
)
from load_report import report
from loadgen import DEFAULT_MIX, Stats, VirtualUser, parse_mix, run_users, solo_latencies
from loadsetup import drain_jobs, log_errors, make_accounts, sql, start_worker
from proctree import TreeSampler, children, cpu_seconds, title
from storm import open_sessions, refresh_storm
from upload import make_png

S3_ACCESS_KEY = "bench-access-key"
S3_SECRET_KEY = "bench-secret-key-not-a-real-one"  # moto accepts any credentials
S3_BUCKET = "irisvue-bench-load"


def load_phase(base: str, arbiter: int, worker: int, users: list, args: Any) -> dict[str, Any]:
    mix = parse_mix(args.mix)
    workers_before = worker_pids(arbiter)
    # The RQ worker's long-lived children (its cron process, RQ's scheduler); any
    # later child is a work horse (one fork per job).
    helpers = {pid: title(pid) for pid in children(worker)}
    cpu0 = {"server": cpu_seconds(arbiter), "rq_worker": cpu_seconds(worker)}
    client0 = time.process_time()
    with TreeSampler([arbiter, worker]) as tree:
        elapsed = run_users(users, args.duration, mix)
    client_cpu = time.process_time() - client0 - tree.cpu_seconds
    cpu = {
        "server": cpu_seconds(arbiter) - cpu0["server"],
        "rq_worker": cpu_seconds(worker) - cpu0["rq_worker"],
        "client": client_cpu,
        "memory_sampler": tree.cpu_seconds,
    }
    stats = Stats()
    for user in users:
        stats.merge(user.stats)
    summary = stats.summary(elapsed)
    horses = [pid for pid in tree.descendants(worker) if pid not in helpers]
    workers_after = worker_pids(arbiter)
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

    from minio import Minio

    workdir = Path(tempfile.mkdtemp(prefix="irisvue-bench-load-"))
    result: dict[str, Any] = {"settings": vars(args), "load_average_start": load_average()}
    worker_proc = None
    try:
        check_redis(redis_url())
        with moto_server(workdir) as endpoint:
            s3 = {
                "S3_ENDPOINT": endpoint,
                "S3_ACCESS_KEY": S3_ACCESS_KEY,
                "S3_SECRET_KEY": S3_SECRET_KEY,
                "S3_BUCKET_NAME": S3_BUCKET,
                "S3_SSE": "s3",
            }
            env = app_env(workdir, args.workers, **s3, **extra)
            prepare_database(database_url(), env, release=True)
            client = Minio(endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, secure=False)
            if not client.bucket_exists(S3_BUCKET):
                client.make_bucket(S3_BUCKET)
            png = make_png(args.png_kb * 1024)
            worker_proc = start_worker(env, workdir / "worker.log")
            with gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as (base, pid):
                wait_workers(pid, args.workers, base + "/health")
                setup_started = time.monotonic()
                accounts, versions = make_accounts(base, args.concurrency + 1, args.setup_threads)
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
                storm_started = time.time()
                pairs = open_sessions(base, accounts, args.storm_sessions, args.setup_threads)
                result["storm"] = refresh_storm(
                    base,
                    pairs,
                    args.storm_duplicates,
                    args.storm_rounds,
                    args.storm_spread,
                    seed=7,
                )
                result["storm"]["db_refresh_reused"] = sql(
                    "SELECT count(*) FROM sessions WHERE revoked_reason = 'refresh_reused' "
                    "AND revoked_at >= to_timestamp(:since)",
                    since=storm_started,
                )[0][0]
                result["storm"]["workers_after"] = worker_pids(pid)
            stop_group(worker_proc)
            result["log_errors"] = {
                "gunicorn": log_errors(workdir / "irisvue.log"),
                "rq_worker": log_errors(workdir / "worker.log"),
            }
    except subprocess.CalledProcessError as exc:
        print(f"bench: {exc.cmd[0]} failed:\n{exc.stderr or exc.stdout}", file=sys.stderr)
        return 1
    finally:
        if worker_proc is not None and worker_proc.poll() is None:
            stop_group(worker_proc)
        shutil.rmtree(workdir, ignore_errors=True)
    return report(args, result)


if __name__ == "__main__":
    sys.exit(main())
