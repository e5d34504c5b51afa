"""A/B for the upload: two builds' capture uploads interleaved with the raw put, one run.

    .venv/bin/python bench/ab_upload.py --a /tmp/base-checkout [--b .] [--rounds 12]
        [--a-env K=V] [--b-env K=V] [--size-mb 20] [--sse s3|none]

bench/upload.py's figures move by 10-20% between runs of the same code on a
shared 2-core machine, more than most levers: this compares two trees (or
two settings) in the same rounds. Starts moto's S3 server and one gunicorn
worker per side (each tree's gunicorn.conf.py, the same PostgreSQL, Redis and
bucket); each round uploads the same ~20 MB PNG to A and to B (alternating
which goes first) and then makes a raw minio `put_object` of it. Prints per
side the median wall time [min-max], the worker's CPU per upload and the
ratio to the raw put, then B/A round by round (below 1: B is faster).
Use a checkout of the commit before the change as A
(`git worktree add --detach /tmp/a <commit>`). Not part of bench/run.
Writes bench/results/ab-upload-<time>.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from typing import Any

from ab import add_build_args, two_builds
from harness.images import make_png
from harness.procfs import cpu_seconds
from harness.results import load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    moto_server,
    prepare_services,
    s3_bucket,
    s3_env,
    scratch,
)
from harness.uploads import S3_BUCKET, delete_capture, raw_put, upload
from harness.users import make_accounts


def rounds(
    sides: dict[str, tuple[str, int]], token: str, client: Any, sse: Any, data: bytes, count: int
) -> dict[str, list[tuple[float, float]]]:
    """`count` rounds of A and B (alternating first) then the raw put: seconds and CPU each."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in (*sides, "raw")}
    for base, _ in sides.values():  # warm-up: every code path once
        delete_capture(base, token, upload(base, token, data)[1]["id"])
    raw_put(client, data, sse)
    for index in range(count):
        order = list(sides.items())
        if index % 2:
            order.reverse()
        for name, (base, arbiter) in order:
            before = cpu_seconds(arbiter)
            seconds, body = upload(base, token, data)
            runs[name].append((seconds, cpu_seconds(arbiter) - before))
            delete_capture(base, token, body["id"])
        runs["raw"].append((raw_put(client, data, sse), 0.0))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_build_args(parser)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--size-mb", type=float, default=20.0)
    parser.add_argument("--sse", choices=["s3", "none"], default="s3")
    args = parser.parse_args(argv)
    from minio.sse import SseS3

    sse = SseS3() if args.sse == "s3" else None
    load = load_average()
    try:
        with scratch("irisvue-bench-ab-upload-") as workdir, moto_server(workdir) as endpoint:
            env = app_env(workdir, 1, **s3_env(endpoint, S3_BUCKET, args.sse))
            prepare_services(env, release=True)
            client = s3_bucket(endpoint, S3_BUCKET)
            data = make_png(int(args.size_mb * 1e6))
            with two_builds(args, env, workdir, 1) as (side_a, side_b):
                sides = {"A": side_a, "B": side_b}
                token = make_accounts(side_a[0], 1, 1)[0][0]["access"]
                runs = rounds(sides, token, client, sse, data, args.rounds)
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    report(args, runs, load, len(data))
    return 0


def report(args: argparse.Namespace, runs: dict, load: str, size: int) -> None:
    print(
        f"A = {args.a} {args.a_env}, B = {args.b} {args.b_env}; {args.rounds} interleaved rounds "
        f"of a {size / 1e6:.1f} MB upload to each, then a raw put; load average {load}"
    )
    raw = statistics.median(seconds for seconds, _ in runs["raw"])
    for name, rows in runs.items():
        walls = [seconds for seconds, _ in rows]
        wall = statistics.median(walls)
        cpu = statistics.median(cpu for _, cpu in rows)
        print(
            f"{name:4s} {wall * 1000:5.0f} ms [{min(walls) * 1000:.0f}-{max(walls) * 1000:.0f}]"
            + (f"  worker CPU {cpu * 1000:4.0f} ms" if name != "raw" else "")
            + f"  = {raw / wall:.2f}x raw"
        )
    ratios = [b / a for (a, _), (b, _) in zip(runs["A"], runs["B"], strict=True)]
    print(
        f"B/A wall per round: median {statistics.median(ratios):.3f} "
        f"[{min(ratios):.2f}-{max(ratios):.2f}] (an A/A run shows the noise)"
    )
    path = write_results(
        "ab-upload",
        {"settings": {**vars(args), "a": str(args.a), "b": str(args.b)}, "runs": runs},
    )
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
