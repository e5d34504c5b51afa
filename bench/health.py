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
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/irisvue_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(url: str, env: dict[str, str]) -> None:
    """Creates the scratch database when missing and migrates it to head."""
    import sqlalchemy as sa

    target = sa.make_url(url)
    admin = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def check_redis(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


@contextlib.contextmanager
def gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """One gunicorn with the project's config; yields (base URL, arbiter pid), stops it after."""
    argv = [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), app]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**env, "BIND": f"127.0.0.1:{port}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_ok(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise SystemExit(f"bench: {url} not ready after {timeout}s ({last})")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def cpu_seconds(arbiter: int) -> float:
    """CPU time (user + system) of a gunicorn arbiter and its live workers."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if arbiter in (pid, ppid):
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def measure(url: str, arbiter: int, args: argparse.Namespace) -> dict:
    """wrk's figures plus the server's CPU time per request (robust to a busy machine)."""
    before = cpu_seconds(arbiter)
    row = run_wrk(url, args.duration, args.connections, args.wrk_threads)
    row["cpu_us_per_req"] = (cpu_seconds(arbiter) - before) / max(row["requests"], 1) * 1e6
    return row


def run_wrk(url: str, seconds: int, connections: int, threads: int) -> dict[str, float]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        url,
    ]
    output = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "requests_per_s": rps,
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def median_run(rows: list[dict]) -> dict:
    """The run with the median throughput (its own latencies, not a mix of runs)."""
    ordered = sorted(rows, key=lambda row: row["requests_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_rps": [row["requests_per_s"] for row in rows]}


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
        default=1,
        help="measure hello/health/ready this many times, interleaved; report the medians",
    )
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)

    workdir = Path(tempfile.mkdtemp(prefix="irisvue-bench-"))
    passthrough = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env = {
        **passthrough,
        "IRISVUE_ENV": "development",
        "IRISVUE_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(args.workers),
    }
    try:
        prepare_database(database_url, env)
        check_redis(redis_url)
        targets: dict[str, str] = {}
        with (
            gunicorn("bench.hello_app:app", free_port(), env, workdir / "hello.log") as hello,
            gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as irisvue,
        ):
            targets = {
                "hello": (hello[0] + "/", hello[1]),
                "health": (irisvue[0] + "/health", irisvue[1]),
                "ready": (irisvue[0] + "/health/ready", irisvue[1]),
            }
            for url, _ in targets.values():
                wait_ok(url)
            for url, _ in targets.values():
                run_wrk(url, args.warmup, args.connections, args.wrk_threads)
            # Interleaved rounds: drift in the machine's load hits every target alike.
            runs: dict[str, list[dict]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, (url, arbiter) in targets.items():
                    runs[name].append(measure(url, arbiter, args))
                    time.sleep(1)
            results = {name: median_run(rows) for name, rows in runs.items()}
        report(args, results, database_url, redis_url)
    except subprocess.CalledProcessError as exc:
        print(f"bench: {exc.cmd[0]} failed:\n{exc.stderr or exc.stdout}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace, results: dict[str, dict], database_url: str, redis_url: str
) -> None:
    hello = results["hello"]["requests_per_s"]
    hello_cpu = results["hello"]["cpu_us_per_req"]
    ratios = {
        "health/hello": results["health"]["requests_per_s"] / hello,
        "ready/hello": results["ready"]["requests_per_s"] / hello,
        # Throughput ratio a dedicated CPU-bound box would show: hello's CPU cost / ours.
        "health/hello by CPU": hello_cpu / results["health"]["cpu_us_per_req"],
        "ready/hello by CPU": hello_cpu / results["ready"]["cpu_us_per_req"],
    }
    print(
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s "
        f"(after {args.warmup}s warm-up), {args.rounds} interleaved round(s), median shown; "
        f"gunicorn.conf.py with {args.workers} workers, {os.cpu_count()} CPUs"
    )
    print(
        f"{'target':<8} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'non-2xx':>8}"
    )
    for name, row in results.items():
        print(
            f"{name:<8} {row['requests_per_s']:>10.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['cpu_us_per_req']:>10.0f} {row['non_2xx']:>8}"
            f"  {row['socket_errors']}"
            + (f"  rounds: {row['rounds_rps']}" if args.rounds > 1 else "")
        )
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    load = os.getloadavg()[0]
    verdict = "met" if ratios["health/hello"] >= 0.9 else "NOT met"
    print(f"SPEC budget /health >= 0.90x hello (req/s): {verdict}; load average {load:.1f}")
    if load > (os.cpu_count() or 1) + 0.5:
        print("bench: the machine is busy; trust the CPU-based ratios over the req/s ones")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"health-{stamp}.json").write_text(
        json.dumps(
            {
                "when": stamp,
                "settings": vars(args),
                "cpus": os.cpu_count(),
                "database": database_url.rsplit("@", 1)[-1],
                "redis": redis_url.rsplit("@", 1)[-1],
                "results": results,
                "ratios": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
