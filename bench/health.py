"""Benchmark: GET /health and /health/ready against a bare Flask "hello", one run.

    .venv/bin/python bench/health.py [--duration 10] [--connections 32] [--rounds 3]

Starts two gunicorns with the project's gunicorn.conf.py (2 workers each, on
loopback): IrisVue (`wsgi:app`) on PostgreSQL and Redis, and
bench/hello_app.py. Measures each URL with wrk (Debian: `apt-get install -y
wrk`) and prints req/s, p50/p99 latency and the ratios to the hello baseline
(SPEC §7: /health >= 0.9x hello). It also reads each server's CPU time per
request from /proc: on a machine shared with other work, the CPU-based ratio
(hello's CPU per request / ours) is the steadier estimate of the req/s ratio a
dedicated CPU-bound box would show (it leaves out PostgreSQL's and Redis's own
CPU). Everything it starts is stopped at the end.

PostgreSQL: BENCH_DATABASE_URL, default the local server's scratch database
`irisvue_bench` (created and migrated when missing). Redis: BENCH_REDIS_URL,
default redis://127.0.0.1:6379/15. Storage is the local directory backend in
a temporary instance folder. Rate limits are off (RATELIMIT_ENABLED=false).
Results are also written to bench/results/health-<time>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from harness.results import busy_warning, load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    free_port,
    gunicorn,
    prepare_services,
    scratch,
    wait_ok,
)
from harness.wrk import (
    Target,
    interleaved_rounds,
    median_run,
    noise_verdict,
    print_table,
    require_wrk,
    round_ratios,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per URL")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure hello/health/ready this many times, interleaved (>= 3 to judge noise); "
        "report the medians and min-max",
    )
    args = parser.parse_args(argv)

    if not require_wrk():
        return 2
    try:
        with scratch("irisvue-bench-") as workdir:
            env = app_env(workdir, args.workers)
            prepare_services(env)
            with (
                gunicorn("bench.hello_app:app", free_port(), env, workdir / "hello.log") as hello,
                gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as irisvue,
            ):
                targets: dict[str, Target] = {
                    "hello": (hello[0] + "/", hello[1], None),
                    "health": (irisvue[0] + "/health", irisvue[1], None),
                    "ready": (irisvue[0] + "/health/ready", irisvue[1], None),
                }
                for url, _, _ in targets.values():
                    wait_ok(url)
                runs = interleaved_rounds(
                    targets,
                    args.rounds,
                    args.duration,
                    args.connections,
                    args.wrk_threads,
                    warmup=args.warmup,
                )
                results = {name: median_run(rows) for name, rows in runs.items()}
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    report(args, runs, results, env["DATABASE_URL"], env["REDIS_URL"])
    return 0


def report(
    args: argparse.Namespace,
    runs: dict[str, list[dict]],
    results: dict[str, dict],
    database_url: str,
    redis_url: str,
) -> None:
    hello = runs["hello"]
    # Round by round (each round measures every target back to back), then the median.
    per_round = {
        "health/hello": round_ratios(runs["health"], hello, "requests_per_s"),
        "ready/hello": round_ratios(runs["ready"], hello, "requests_per_s"),
        # Throughput ratio a dedicated CPU-bound box would show: hello's CPU cost / ours.
        "health/hello by CPU": round_ratios(runs["health"], hello, "cpu_us_per_req"),
        "ready/hello by CPU": round_ratios(runs["ready"], hello, "cpu_us_per_req"),
    }
    ratios = {name: value["median"] for name, value in per_round.items()}
    noise = noise_verdict(hello)
    print(
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s "
        f"(after {args.warmup}s warm-up), {args.rounds} interleaved round(s), median [min-max]; "
        f"gunicorn.conf.py with {args.workers} workers, {os.cpu_count()} CPUs"
    )
    print_table(results)
    for name, value in per_round.items():
        lo, hi = value["range"]
        print(f"{name}: {value['median']:.2f} [{lo:.2f}-{hi:.2f}]")
    print(f"noise: {noise['text']}")
    verdict = "met" if ratios["health/hello"] >= 0.9 else "NOT met"
    if noise["too_noisy"]:
        verdict += " (too noisy to judge)"
    print(f"SPEC budget /health >= 0.90x hello (req/s): {verdict}; load average {load_average()}")
    busy_warning()
    write_results(
        "health",
        {
            "settings": vars(args),
            "database": database_url.rsplit("@", 1)[-1],
            "redis": redis_url.rsplit("@", 1)[-1],
            "results": results,
            "ratios": ratios,
            "ratio_rounds": per_round,
            "noise": noise,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
