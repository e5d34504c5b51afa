"""Benchmark: login against the Argon2 ceiling, and GET /api/v1/auth/me, one run.

    .venv/bin/python bench/auth.py [--login-duration 20] [--me-duration 10] [--rounds 1]

In one run (SPEC §7):
1. The Argon2 ceiling: CPU time of one verify (the cheaper of the app's and
   argon2-cffi's `PasswordHasher.verify`, harness/argon.py) with the app's
   parameters (irisvue.auth.passwords defaults, ARGON2_* overrides honoured),
   measured before and after the load; ceiling = usable cores / CPU s per verify.
2. GET /api/v1/auth/me with a valid access token at 32 connections, interleaved
   with a bare Flask "hello" (bench/hello_app.py) under the same gunicorn
   settings: req/s, p50/p99, ratio to hello round by round (SPEC: >= 0.25x,
   p99 <= 50 ms) and to the peer's 331 req/s. Beside them the platform's
   floor (`/floor` of bench/hello_app.py: hello plus one indexed PostgreSQL
   query, nothing else): what any database-backed read reaches here.
3. POST /api/v1/auth/login (valid credentials) at 64 connections, --rounds
   rounds each after its own ceiling measurement: logins/s,
   p50/p99, ratio to the ceiling (aim >= 0.9), each worker's peak RSS during
   the run (kernel VmHWM, reset before the run, plus 20 ms VmRSS sampling;
   aim <= 300 MiB), and whether a worker was replaced (pids before/after).

gunicorn: the project's gunicorn.conf.py, 2 workers, PostgreSQL and Redis on
loopback (BENCH_DATABASE_URL / BENCH_REDIS_URL, as bench/health.py), rate
limits off. The CPU-based figures (server CPU per request) are the steadier
ones on a machine shared with other work. Results also go to
bench/results/auth-<time>.json. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.argon import argon2_cpu_per_verify, usable_cores
from harness.client import API
from harness.procfs import (
    RssSampler,
    children,
    cpu_seconds,
    memory_kib,
    reset_peak,
    wait_idle,
)
from harness.results import busy_warning, load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    free_port,
    gunicorn,
    prepare_services,
    scratch,
    wait_ok,
    wait_workers,
)
from harness.users import scripted_account
from harness.wrk import (
    Target,
    interleaved_rounds,
    median_run,
    noise_verdict,
    print_table,
    require_wrk,
    round_ratios,
    run_wrk,
)

PEER_ME_RPS = 331.0  # FastAPI full-stack template's /users/me, SPEC §7
LOGIN_RSS_BUDGET_MIB = 300


def login_run(base: str, arbiter: int, args: argparse.Namespace, script: Path) -> dict[str, Any]:
    workers = children(arbiter)
    idle = {pid: memory_kib(pid) for pid in workers}
    hwm_reset = all(reset_peak(pid) for pid in workers)
    cpu_before, started = cpu_seconds(arbiter), time.monotonic()
    with RssSampler(workers) as sampler:
        row = run_wrk(
            f"{base}{API}/auth/login",
            args.login_duration,
            args.login_connections,
            args.wrk_threads,
            script=script,
            timeout=30,
        )
    elapsed = time.monotonic() - started
    server_cpu = cpu_seconds(arbiter) - cpu_before
    hwm = {pid: memory_kib(pid, "VmHWM") for pid in workers}
    after = children(arbiter)
    row.update(
        server_cpu_s_per_login=server_cpu / max(row["requests"], 1),
        server_cpu_utilisation=server_cpu / elapsed / usable_cores(),
        worker_idle_rss_mib={pid: kib / 1024 for pid, kib in idle.items()},
        worker_peak_rss_mib={
            pid: max(hwm[pid] if hwm_reset else 0, sampler.peak_kib[pid]) / 1024 for pid in workers
        },
        peak_source="VmHWM (reset before the run) and sampled VmRSS"
        if hwm_reset
        else "sampled VmRSS every 20 ms (VmHWM could not be reset)",
        workers_before=workers,
        workers_after=after,
        worker_replaced=after != workers,
    )
    return row


def login_summary(rounds: list[dict[str, Any]], argon2: list[dict[str, Any]]) -> dict[str, Any]:
    """Login rounds: the median round (its own latencies) plus, round by round, the
    ratio to the ceiling measured just before it and after it; worst-case memory."""
    cores = usable_cores()
    ratios, cpu_ratios = [], []
    for index, row in enumerate(rounds):
        cpu_per_verify = (argon2[index]["cpu_s"] + argon2[index + 1]["cpu_s"]) / 2
        row["ceiling"] = cores / cpu_per_verify
        ratios.append(row["requests_per_s"] / row["ceiling"])
        cpu_ratios.append(cpu_per_verify / row["server_cpu_s_per_login"])
    summary = median_run(rounds)
    peaks: dict[int, float] = {}
    for row in rounds:
        for pid, peak in row["worker_peak_rss_mib"].items():
            peaks[pid] = max(peaks.get(pid, 0.0), peak)
    summary.update(
        worker_peak_rss_mib=peaks,
        worker_replaced=any(row["worker_replaced"] for row in rounds),
        ratio_rounds=ratios,
        ratio_median=statistics.median(ratios),
        ratio_range=[min(ratios), max(ratios)],
        cpu_ratio_median=statistics.median(cpu_ratios),
        all_rounds=[
            {k: row[k] for k in ("requests_per_s", "p99_ms", "ceiling", "server_cpu_s_per_login")}
            for row in rounds
        ],
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--login-duration", type=int, default=20, help="seconds of login load")
    parser.add_argument("--login-connections", type=int, default=64)
    parser.add_argument("--me-duration", type=int, default=10, help="seconds per /me round")
    parser.add_argument("--me-connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per URL")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved hello / me rounds, and login rounds (>= 3 to judge noise)",
    )
    parser.add_argument("--argon2-samples", type=int, default=8)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not require_wrk():
        return 2

    try:
        with scratch("irisvue-bench-auth-") as workdir:
            env = app_env(workdir, args.workers)
            prepare_services(env)
            argon2_before = argon2_cpu_per_verify(args.argon2_samples)
            with (
                gunicorn("bench.hello_app:app", free_port(), env, workdir / "hello.log") as hello,
                gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as irisvue,
            ):
                base, arbiter = irisvue
                wait_ok(hello[0] + "/")
                wait_workers(arbiter, args.workers, base + "/health")
                scripted = scripted_account(base, workdir)
                targets: dict[str, Target] = {
                    "hello": (hello[0] + "/", hello[1], None),
                    "floor": (hello[0] + "/floor", hello[1], None),
                    "me": (f"{base}{API}/auth/me", arbiter, scripted.me),
                }
                runs = interleaved_rounds(
                    targets,
                    args.rounds,
                    args.me_duration,
                    args.me_connections,
                    args.wrk_threads,
                    warmup=args.warmup,
                )
                me_results = {name: median_run(rows) for name, rows in runs.items()}
                load_me = load_average()
                logins, ceilings = [], [argon2_before]
                for index in range(args.rounds):
                    if index:
                        # Logins the previous round left queued would count in this one.
                        wait_idle(arbiter)
                        ceilings.append(argon2_cpu_per_verify(args.argon2_samples))
                    logins.append(login_run(base, arbiter, args, scripted.login))
                load_login = load_average()
            argon2_after = argon2_cpu_per_verify(args.argon2_samples)
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    login = login_summary(logins, [*ceilings, argon2_after])
    report(args, argon2_before, argon2_after, runs, me_results, login, load_me, load_login)
    return 0


def report(
    args: argparse.Namespace,
    argon2_before: dict[str, Any],
    argon2_after: dict[str, Any],
    runs: dict[str, list[dict]],
    me: dict[str, dict],
    login: dict[str, Any],
    load_me: str,
    load_login: str,
) -> None:
    cores = usable_cores()
    cpu_per_verify = (argon2_before["cpu_s"] + argon2_after["cpu_s"]) / 2
    ceiling = cores / cpu_per_verify
    me_hello = round_ratios(runs["me"], runs["hello"], "requests_per_s")
    me_hello_cpu = round_ratios(runs["me"], runs["hello"], "cpu_us_per_req")
    me_floor = round_ratios(runs["me"], runs["floor"], "requests_per_s")
    noise = noise_verdict(runs["hello"])
    ratios = {
        "me/peer 331 req/s": me["me"]["requests_per_s_median"] / PEER_ME_RPS,
        "me/hello (req/s, same run)": me_hello["median"],
        "me/hello by CPU": me_hello_cpu["median"],
        "me/floor (req/s, same run)": me_floor["median"],
        "floor/hello (req/s, same run)": round_ratios(
            runs["floor"], runs["hello"], "requests_per_s"
        )["median"],
        "login/ceiling": login["ratio_median"],
        # What a dedicated box would reach: a verify's CPU over the server's CPU per login.
        "login/ceiling by CPU": login["cpu_ratio_median"],
    }
    print(
        f"Argon2 {argon2_before['params']}: CPU per verify {argon2_before['cpu_s'] * 1000:.0f} ms "
        f"before, {argon2_after['cpu_s'] * 1000:.0f} ms after the load "
        f"(wall {argon2_before['wall_s'] * 1000:.0f} ms on one thread, "
        f"{argon2_before['library_wall_s'] * 1000:.0f} ms on a thread per lane; "
        f"CPU: the cheaper of the app's "
        f"{argon2_before['app_cpu_s'] * 1000:.0f} ms on one thread and argon2-cffi's "
        f"{argon2_before['library_cpu_s'] * 1000:.0f} ms on a thread per lane); "
        f"ceiling {cores} usable cores "
        f"(CPU affinity; {os.cpu_count()} on the machine) / "
        f"{cpu_per_verify * 1000:.0f} ms = {ceiling:.2f} logins/s"
    )
    print(
        f"/me: wrk -t{args.wrk_threads} -c{args.me_connections} -d{args.me_duration}s, "
        f"{args.rounds} interleaved round(s) with hello, median [min-max]; {args.workers} "
        f"workers; load average {load_me}"
    )
    print_table(me)
    print(
        f"login: wrk -t{args.wrk_threads} -c{args.login_connections} -d{args.login_duration}s "
        f"x {len(login['all_rounds'])} round(s); load average {load_login}"
    )
    for index, row in enumerate(login["all_rounds"], 1):
        print(
            f"login round {index}: {row['requests_per_s']:.2f}/s vs ceiling {row['ceiling']:.2f}/s "
            f"= {row['requests_per_s'] / row['ceiling']:.2f}x; p99 {row['p99_ms']:.0f} ms; "
            f"server CPU {row['server_cpu_s_per_login'] * 1000:.0f} ms/login"
        )
    for pid, peak in login["worker_peak_rss_mib"].items():
        print(
            f"worker {pid}: idle RSS {login['worker_idle_rss_mib'].get(pid, 0):.0f} MiB, "
            f"peak {peak:.0f} MiB over the login rounds (budget {LOGIN_RSS_BUDGET_MIB} MiB)"
        )
    print(f"peak from: {login['peak_source']}; worker replaced: {login['worker_replaced']}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    for name, value in (("me/hello", me_hello), ("login/ceiling", login)):
        lo, hi = value["range"] if "range" in value else value["ratio_range"]
        print(f"{name} range over rounds: {lo:.2f}-{hi:.2f}")
    print(f"noise: {noise['text']}")
    peak = max(login["worker_peak_rss_mib"].values())
    verdicts = {
        "/me >= 0.25x hello": ratios["me/hello (req/s, same run)"] >= 0.25,
        "/me p99 <= 50 ms": me["me"]["p99_ms_median"] <= 50,
        "login >= 0.90x ceiling": ratios["login/ceiling"] >= 0.9,
        f"worker peak RSS <= {LOGIN_RSS_BUDGET_MIB} MiB": peak <= LOGIN_RSS_BUDGET_MIB,
        "no worker killed": not login["worker_replaced"],
    }
    suffix = " (too noisy to judge)" if noise["too_noisy"] else ""
    print(
        "SPEC budgets: "
        + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in verdicts.items())
        + suffix
    )
    busy_warning()
    path = write_results(
        "auth",
        {
            "settings": vars(args),
            # cores: what the ceiling divides by (the top-level "cpus" is os.cpu_count()).
            "argon2": {
                "before": argon2_before,
                "after": argon2_after,
                "ceiling": ceiling,
                "cores": cores,
            },
            "me": me,
            "login": login,
            "ratios": ratios,
            "ratio_rounds": {
                "me/hello": me_hello,
                "me/hello by CPU": me_hello_cpu,
                "me/floor": me_floor,
            },
            "noise": noise,
            "verdicts": verdicts,
            "load_me": load_me,
            "load_login": load_login,
            "rss_budget_mib": LOGIN_RSS_BUDGET_MIB,
        },
    )
    print(f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    sys.exit(main())
