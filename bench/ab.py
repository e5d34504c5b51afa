"""A/B: two builds (or two settings) of the app side by side, interleaved, per-request CPU.

    .venv/bin/python bench/ab.py --a /tmp/base-checkout [--b .] [--a-env K=V] [--b-env K=V]
        [--paths /health,/api/v1/auth/me] [--rounds 5] [--duration 5]

Starts the hello baseline and two IrisVue gunicorns (project's gunicorn.conf.py
of each tree, 2 workers, the same PostgreSQL, Redis and instance folder, so one
account's token works on both), then runs interleaved rounds: hello, then each
path on A and on B back to back, with wrk (32 connections). Prints, per target,
req/s, p99, server CPU per request (from /proc: the steady figure on a shared
machine) as median [min-max], non-2xx responses and each worker's share of the
CPU; then B/A round by round. Use it to measure one lever at a time: a checkout of the
commit before it as A (`git worktree add --detach /tmp/a <commit>`), or the same
tree with one setting changed (`--a-env GUNICORN_REUSE_PORT=0`).
Writes bench/results/ab-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from harness import ROOT
from harness.client import API, expect, http_json
from harness.results import load_average, write_results
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
)


def pairs(values: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values)


Side = tuple[str, int]  # base URL, arbiter pid


def add_build_args(parser: argparse.ArgumentParser) -> None:
    """--a, --b (source trees) and --a-env, --b-env (extra settings per side)."""
    parser.add_argument("--a", type=Path, required=True, help="source tree of A")
    parser.add_argument("--b", type=Path, default=ROOT, help="source tree of B [this one]")
    parser.add_argument("--a-env", action="append", default=[], metavar="K=V")
    parser.add_argument("--b-env", action="append", default=[], metavar="K=V")


@contextlib.contextmanager
def two_builds(
    args: argparse.Namespace, env: dict[str, str], workdir: Path, workers: int
) -> Iterator[tuple[Side, Side]]:
    """A's and B's gunicorn (each tree's config, each side's `--a-env`/`--b-env`), workers up."""
    with (
        gunicorn(
            "wsgi:app",
            free_port(),
            {**env, **pairs(args.a_env)},
            workdir / "a.log",
            root=args.a.resolve(),
        ) as side_a,
        gunicorn(
            "wsgi:app",
            free_port(),
            {**env, **pairs(args.b_env)},
            workdir / "b.log",
            root=args.b.resolve(),
        ) as side_b,
    ):
        for base, arbiter in (side_a, side_b):
            wait_workers(arbiter, workers, base + "/health")
        yield side_a, side_b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_build_args(parser)
    parser.add_argument("--paths", default=f"/health,{API}/auth/me")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not require_wrk():
        return 2
    paths = [p for p in args.paths.split(",") if p]
    try:
        with scratch("irisvue-bench-ab-") as workdir:
            env = app_env(workdir, args.workers)
            prepare_services(env)
            with (
                gunicorn("bench.hello_app:app", free_port(), env, workdir / "hello.log") as hello,
                two_builds(args, env, workdir, args.workers) as (side_a, side_b),
            ):
                wait_ok(hello[0] + "/")
                # One database behind both sides: B's account is valid on A too.
                scripted = scripted_account(side_b[0], workdir, "ab")
                me_on_a = http_json("GET", f"{side_a[0]}{API}/auth/me", None, scripted.bearer)
                expect(*me_on_a, 200, "GET /me on A")
                script = scripted.me
                targets: dict[str, Target] = {"hello": (hello[0] + "/", hello[1], script)}
                for path in paths:
                    targets[f"A {path}"] = (side_a[0] + path, side_a[1], script)
                    targets[f"B {path}"] = (side_b[0] + path, side_b[1], script)
                runs = interleaved_rounds(
                    targets, args.rounds, args.duration, args.connections, 2, warmup=2, pause=0
                )
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    report(args, paths, runs)
    return 0


def report(args: argparse.Namespace, paths: list[str], runs: dict[str, list[dict]]) -> None:
    print(
        f"A = {args.a} {args.a_env}, B = {args.b} {args.b_env}; {args.rounds} interleaved rounds "
        f"of {args.duration} s, wrk -c{args.connections}; median [min-max]; "
        f"load average {load_average()}"
    )
    summary = {name: median_run(rows) for name, rows in runs.items()}
    print_table(summary, width=28)
    ratios = {}
    for path in paths:
        a, b = runs[f"A {path}"], runs[f"B {path}"]
        # round_ratios inverts a CPU cost (n/d by CPU = d's CPU / n's), so A over B by CPU
        # is B's CPU per request over A's: the B/A cost ratio printed here.
        cpu = round_ratios(a, b, "cpu_us_per_req")
        rps = round_ratios(b, a, "requests_per_s")
        ratios[path] = {"cpu_b_over_a": cpu["rounds"], "rps_b_over_a": rps["rounds"]}
        print(
            f"{path}: B/A CPU per request {cpu['median']:.2f} "
            f"[{cpu['range'][0]:.2f}-{cpu['range'][1]:.2f}], B/A req/s {rps['median']:.2f} "
            f"[{rps['range'][0]:.2f}-{rps['range'][1]:.2f}]"
        )
    noise = noise_verdict(runs["hello"])
    print(f"noise: {noise['text']} (CPU per request is the figure to trust when noisy)")
    write_results(
        "ab",
        {
            "settings": {**vars(args), "a": str(args.a), "b": str(args.b)},
            "results": summary,
            "ratios": ratios,
            "noise": noise,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
