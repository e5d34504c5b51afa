"""Profile: where a request's server CPU goes, for hello, /health, /me and login.

    .venv/bin/python bench/profile.py [--duration 6] [--rounds 3] [--sample 8] [--no-py-spy]

Starts the hello baseline and IrisVue under the project's gunicorn.conf.py (2
workers each, PostgreSQL and Redis on loopback, as bench/health.py), then:

1. Per-request server CPU, from /proc: interleaved rounds of wrk (32
   connections) on hello, /health and /api/v1/auth/me, and a login round (8
   connections); CPU of the arbiter and its workers over the requests served.
   CPU per request does not depend on how busy the machine is (wall-clock
   throughput does), so this is the figure to compare between runs and
   branches; the median and min-max of the rounds are printed.
2. Where it goes, with py-spy (`py-spy record --gil --nonblocking --format raw`, needs
   root or ptrace rights) on every worker while wrk loads one URL: each sample
   is attributed to the innermost layer it is in (our hooks, JWT decode, the
   revocation query, serialisation, the access log, CORS...), else to
   Flask/Werkzeug dispatch, gunicorn (HTTP parsing, socket I/O, threads), or
   "other". Layer share x CPU per request = that layer's microseconds per
   request. Python frames only: time in C code is charged to the Python
   function that called it.

Writes bench/results/profile-<time>.json. Not part of bench/run (the figures are
diagnostic, not budgets); README "Where the time goes" quotes its output.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from harness import ROOT
from harness.argon import argon2_cpu_per_verify
from harness.client import API
from harness.procfs import children
from harness.results import load_average, write_results
from harness.stack import (
    VENV_BIN,
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
from harness.wrk import measure, require_wrk, run_wrk

# (layer, regex on "function (file)" of a frame). The innermost matching frame of
# a sample decides; the generic layers count only when no specific one matched.
SPECIFIC = [
    ("revocation check + user load (ours)", r"^(token_is_revoked|load_user) .*irisvue/auth/tokens"),
    (
        "JWT decode (flask-jwt-extended, PyJWT)",
        r"^(decode_token|_decode_jwt_from_config|_decode_jwt|get_unverified_jwt_headers"
        r"|_decode_jwt_from_headers) |/jwt/|irisvue/jwtcache",
    ),
    ("serialisation (marshmallow, JSON)", r"marshmallow/|/json/|^(jsonify|dumps?) "),
    ("request id + metrics (observability)", r"irisvue/observability|prometheus_client/"),
    ("request guards", r"irisvue/guards"),
    ("CORS", r"flask_cors/"),
    ("access log (JSON line)", r"^access .*gunicorn\.conf|logging/__init__|structlog/"),
    (
        "SQLAlchemy + psycopg2 (ping, query, ORM, teardown)",
        r"sqlalchemy/|psycopg2/|flask_sqlalchemy/",
    ),
    ("Redis", r"redis/"),
    ("Argon2", r"argon2/"),
]
GENERIC = [
    (
        "Flask/Werkzeug/smorest dispatch",
        r"flask/|werkzeug/|flask_smorest/|flask_jwt_extended/|webargs/|blinker/|irisvue/",
    ),
    ("gunicorn (HTTP parsing, socket I/O, threads)", r"gunicorn/|selectors|socket|threading"),
]


def classify(stack: str) -> str:
    frames = stack.split(";")
    for patterns in (SPECIFIC, GENERIC):
        for frame in reversed(frames):  # innermost first
            for layer, pattern in patterns:
                if re.search(pattern, frame):
                    return layer
    return "other"


def py_spy(pid: int, seconds: int, out: Path, rate: int) -> subprocess.Popen:
    argv = [
        str(VENV_BIN / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--nonblocking",
        "--gil",  # only the thread holding the GIL: Python CPU, not threads waiting on I/O
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def sample(
    url: str,
    arbiter: int,
    seconds: int,
    connections: int,
    workdir: Path,
    name: str,
    rate: int,
    keep: Path | None = None,
    **wrk,
) -> Counter:
    """Layer -> sample count over every worker while wrk loads `url`; with `keep`, the
    raw stacks are also appended there (for --keep-stacks)."""
    procs = {
        pid: py_spy(pid, seconds, workdir / f"{name}-{pid}.txt", rate) for pid in children(arbiter)
    }
    time.sleep(0.5)
    run_wrk(url, seconds, connections, 2, **wrk)
    layers: Counter = Counter()
    for pid, proc in procs.items():
        _, err = proc.communicate(timeout=seconds + 30)
        path = workdir / f"{name}-{pid}.txt"
        if not path.exists():
            print(f"py-spy on {pid} wrote nothing: {err.strip()[-300:]}", file=sys.stderr)
            continue
        text = path.read_text()
        if keep is not None:
            with keep.open("a") as out:
                out.write(text)
        for line in text.splitlines():
            stack, _, count = line.rpartition(" ")
            if count.isdigit() and not _idle(stack):
                layers[classify(stack)] += int(count)
    return layers


def _idle(stack: str) -> bool:
    """A thread waiting (the gthread main loop in select, a pool thread on its queue)."""
    leaf = stack.rsplit(";", 1)[-1]
    return bool(re.match(r"(select|poll|wait|_wait_for_tstate_lock|acquire) ", leaf))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--login-connections", type=int, default=8)
    parser.add_argument("--sample", type=int, default=8, help="seconds of py-spy per URL")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--no-py-spy", action="store_true")
    parser.add_argument(
        "--keep-stacks",
        type=Path,
        help="directory for py-spy's raw stacks per target (<target>.txt: collapsed stacks, "
        "for flamegraph.pl or speedscope)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree to profile")
    args = parser.parse_args(argv)
    if not require_wrk():
        return 2
    use_spy = not args.no_py_spy and shutil.which(str(VENV_BIN / "py-spy")) is not None
    try:
        with scratch("irisvue-bench-profile-") as workdir:
            env = app_env(workdir, args.workers)
            prepare_services(env)
            with (
                gunicorn("bench.hello_app:app", free_port(), env, workdir / "hello.log") as hello,
                gunicorn(
                    "wsgi:app", free_port(), env, workdir / "irisvue.log", root=args.root.resolve()
                ) as irisvue,
            ):
                base, arbiter = irisvue
                wait_ok(hello[0] + "/")
                wait_workers(arbiter, args.workers, base + "/health")
                scripted = scripted_account(base, workdir, "profile")
                me, login = scripted.me, scripted.login
                targets = {
                    "hello": (hello[0] + "/", hello[1], None, args.connections),
                    "health": (base + "/health", arbiter, None, args.connections),
                    "me": (f"{base}{API}/auth/me", arbiter, me, args.connections),
                    "login": (f"{base}{API}/auth/login", arbiter, login, args.login_connections),
                }
                for url, _, script, conns in targets.values():
                    run_wrk(url, 2, conns, 2, script=script)
                cpu: dict[str, list[float]] = {name: [] for name in targets}
                for _ in range(args.rounds):
                    for name, (url, pid, script, conns) in targets.items():
                        row = measure(url, pid, args.duration, conns, 2, script=script, timeout=30)
                        cpu[name].append(row["cpu_us_per_req"])
                layers: dict[str, Counter] = {}
                if use_spy:
                    for name, (url, pid, script, conns) in targets.items():
                        keep = None
                        if args.keep_stacks:
                            args.keep_stacks.mkdir(parents=True, exist_ok=True)
                            keep = args.keep_stacks / f"{name}.txt"
                            keep.unlink(missing_ok=True)
                        layers[name] = sample(
                            url,
                            pid,
                            args.sample,
                            conns,
                            workdir,
                            name,
                            args.rate,
                            keep=keep,
                            script=script,
                        )
        argon2_us = argon2_cpu_per_verify(6)["cpu_s"] * 1e6
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    report(args, cpu, layers, argon2_us)
    return 0


def report(
    args: argparse.Namespace,
    cpu: dict[str, list[float]],
    layers: dict[str, Counter],
    argon2_us: float,
) -> None:
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    # Argon2 runs without the GIL, so py-spy --gil never sees it: its CPU is measured
    # apart (one verify in this process) and the samples share out the rest.
    python_us = dict(medians, login=max(medians["login"] - argon2_us, 0.0))
    print(
        f"server CPU per request (µs), median [min-max] of {args.rounds} rounds of "
        f"{args.duration} s; load average {load_average()}"
    )
    for name, values in cpu.items():
        print(f"  {name:<7} {medians[name]:>9.0f} [{min(values):.0f}-{max(values):.0f}]")
    breakdown: dict[str, dict[str, float]] = {}
    for name, counts in layers.items():
        total = sum(counts.values())
        if not total:
            continue
        print(f"\n{name}: {total} py-spy samples (GIL held) -> µs per request")
        breakdown[name] = {}
        if name == "login":
            breakdown[name]["Argon2 verify (no GIL, measured apart)"] = argon2_us
            print(f"  {'Argon2 verify (no GIL, measured apart)':<52} {argon2_us:>8.0f}")
        for layer, count in counts.most_common():
            share = count / total
            breakdown[name][layer] = share * python_us[name]
            print(f"  {layer:<52} {share:>6.1%} {share * python_us[name]:>8.0f}")
    write_results(
        "profile",
        {
            "settings": vars(args),
            "cpu_us_per_request": cpu,
            "median_cpu_us_per_request": medians,
            "layer_us_per_request": breakdown,
            "argon2_verify_cpu_us": argon2_us,
            "layer_samples": {name: dict(counts) for name, counts in layers.items()},
        },
    )


if __name__ == "__main__":
    sys.exit(main())
