"""Benchmark: capture uploads against a raw put_object to the same S3 endpoint, one run.

    .venv/bin/python bench/upload.py [--repeats 5] [--sizes-mb 20,100] [--concurrency 4]

Starts moto's standalone S3 server on loopback (the "same endpoint" for both
sides) and gunicorn (project config, 1 worker, PostgreSQL and Redis as
bench/health.py, rate limits off). Sets up one user: registered over HTTP,
marked verified in the database (setup only), consent texts loaded with
`flask release`, biometric consent granted over HTTP.

1. Throughput: a ~20 MB PNG (random pixels, stored uncompressed) uploaded as
   multipart through POST /api/v1/captures/ (http.client, streamed from
   memory), interleaved with a minio `put_object` of the same bytes (same
   SSE setting as the app): MB/s each (median of --repeats), ratio (SPEC §7:
   >= 0.8x). The floor, in the same rounds: the same request to `/relay` of
   bench/hello_app.py under the same gunicorn settings, which hands the body
   untouched to minio's `put_object` (no parsing, hashing of the photo or
   encryption): what any upload that passes through gunicorn + Flask pays.
   And the raw put again with one part in flight instead of minio's 3: what
   an upload that holds one part in memory (ours, the relay's) can reach.
   And `/sealed` of bench/hello_app.py: the body hashed, encrypted and stored
   through IrisVue's S3 store, with no parsing, stripping, auth or database:
   the least an upload meeting SPEC's capture rules can cost on this stack.
2. Memory: the worker's peak RSS (VmHWM reset after an idle warm-up upload,
   plus 20 ms VmRSS sampling) during --concurrency simultaneous uploads,
   minus its idle RSS, per concurrent upload (SPEC: <= 16 MB, independent of
   file size), for each size in --sizes-mb (MAX_UPLOAD_MB raised to fit, and
   GUNICORN_THREADS to --concurrency, so every upload is in the worker at once).

Every object is deleted after it is measured. Results also go to
bench/results/upload-<time>.json. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from harness import MIB
from harness.images import make_png
from harness.procfs import RssSampler, cpu_seconds, memory_kib, reset_peak
from harness.results import busy_warning, load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    free_port,
    gunicorn,
    moto_server,
    prepare_services,
    s3_bucket,
    s3_env,
    scratch,
    wait_workers,
)
from harness.uploads import S3_BUCKET, delete_capture, floor_upload, raw_put, upload
from harness.users import make_accounts

MEMORY_BUDGET_MB = 16


def throughput(
    base: str,
    arbiter: int,
    token: str,
    relay_base: str,
    client: Any,
    sse: Any,
    data: bytes,
    repeats: int,
) -> dict:
    """Interleaved app uploads, raw puts and relays of the same bytes; MB/s (1 MB = 10^6 bytes)."""
    app_s, raw_s, relay_s, app_cpu, serial_s, sealed_s = [], [], [], [], [], []
    delete_capture(base, token, upload(base, token, data)[1]["id"])  # warm-up, every path
    raw_put(client, data, sse)
    floor_upload(relay_base, client, data)
    floor_upload(relay_base, client, data, "/sealed")
    for _ in range(repeats):
        cpu_before = cpu_seconds(arbiter)
        seconds, body = upload(base, token, data)
        app_cpu.append(cpu_seconds(arbiter) - cpu_before)
        app_s.append(seconds)
        delete_capture(base, token, body["id"])
        raw_s.append(raw_put(client, data, sse))
        relay_s.append(floor_upload(relay_base, client, data))
        serial_s.append(raw_put(client, data, sse, parallel=1))
        sealed_s.append(floor_upload(relay_base, client, data, "/sealed"))
    mb = len(data) / 1e6
    app_mbps = mb / statistics.median(app_s)
    raw_mbps = mb / statistics.median(raw_s)
    relay_mbps = mb / statistics.median(relay_s)
    return {
        "bytes": len(data),
        "app_seconds": app_s,
        "raw_seconds": raw_s,
        "app_worker_cpu_seconds": app_cpu,
        "app_mb_per_s": app_mbps,
        "raw_mb_per_s": raw_mbps,
        "ratio": app_mbps / raw_mbps,
        # Each app upload against the raw put right after it: the median and min-max.
        "ratio_rounds": [raw / app for app, raw in zip(app_s, raw_s, strict=True)],
        # The floor: the same body relayed untouched through gunicorn + Flask to S3.
        "relay_seconds": relay_s,
        "relay_mb_per_s": relay_mbps,
        "relay_ratio": relay_mbps / raw_mbps,
        "relay_ratio_rounds": [raw / r for r, raw in zip(relay_s, raw_s, strict=True)],
        "app_to_relay": app_mbps / relay_mbps,
        # The raw put with one part in flight, as an upload holding one part in memory sends.
        "raw_serial_seconds": serial_s,
        "raw_serial_ratio": statistics.median(raw_s) / statistics.median(serial_s),
        "raw_serial_ratio_rounds": [raw / s for s, raw in zip(serial_s, raw_s, strict=True)],
        # The least an upload that hashes, encrypts and signs as SPEC asks can do here.
        "sealed_seconds": sealed_s,
        "sealed_ratio": statistics.median(raw_s) / statistics.median(sealed_s),
        "sealed_ratio_rounds": [raw / s for s, raw in zip(sealed_s, raw_s, strict=True)],
        "app_to_sealed": statistics.median(sealed_s) / statistics.median(app_s),
    }


def concurrent_memory(base: str, arbiter: int, token: str, data: bytes, concurrency: int) -> dict:
    """Peak RSS growth of the single worker during `concurrency` simultaneous uploads."""
    (worker,) = wait_workers(arbiter, 1, base + "/health")
    delete_capture(base, token, upload(base, token, data)[1]["id"])  # warm the code paths
    time.sleep(1)
    idle_kib = memory_kib(worker)
    hwm_reset = reset_peak(worker)
    results: list[Any] = [None] * concurrency

    def one(index: int) -> None:
        try:
            results[index] = upload(base, token, data)
        except BaseException as exc:  # noqa: BLE001 - reported below, not swallowed
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    with RssSampler([worker]) as sampler:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    hwm_kib = memory_kib(worker, "VmHWM") if hwm_reset else 0
    peak_kib = max(hwm_kib, sampler.peak_kib[worker])
    failures = [repr(r) for r in results if not isinstance(r, tuple)]
    for result in results:
        if isinstance(result, tuple):
            delete_capture(base, token, result[1]["id"])
    if failures:
        raise SystemExit(f"bench: concurrent upload failed: {failures}")
    growth_mib = (peak_kib - idle_kib) / 1024
    return {
        "file_bytes": len(data),
        "concurrency": concurrency,
        "worker": worker,
        "idle_rss_mib": idle_kib / 1024,
        "peak_rss_mib": peak_kib / 1024,
        "peak_source": "VmHWM+sampled VmRSS" if hwm_reset else "sampled VmRSS",
        "growth_mib": growth_mib,
        "growth_per_upload_mib": growth_mib / concurrency,
        "seconds": elapsed,
        "aggregate_mb_per_s": len(data) * concurrency / 1e6 / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="uploads per side (throughput)")
    parser.add_argument("--size-mb", type=float, default=20.0, help="throughput file size, MB")
    parser.add_argument(
        "--sizes-mb", default="20,100", help="file sizes (MB) for the memory measurement"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sse", choices=["s3", "none"], default="s3", help="S3_SSE for both")
    args = parser.parse_args(argv)
    sizes = [float(size) for size in args.sizes_mb.split(",") if size.strip()]

    from minio.sse import SseS3

    sse = SseS3() if args.sse == "s3" else None
    loads: dict[str, str] = {}
    memory: list[dict] = []
    try:
        with scratch("irisvue-bench-upload-") as workdir, moto_server(workdir) as endpoint:
            env = app_env(workdir, 1, **s3_env(endpoint, S3_BUCKET, args.sse))
            prepare_services(env, release=True)
            client = s3_bucket(endpoint, S3_BUCKET)
            data = make_png(int(args.size_mb * 1e6))
            relay_log = workdir / "relay.log"
            with (
                gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as (base, pid),
                gunicorn("bench.hello_app:app", free_port(), env, relay_log) as (relay_base, rpid),
            ):
                wait_workers(pid, 1, base + "/health")
                wait_workers(rpid, 1, relay_base + "/")
                token = make_accounts(base, 1, 1)[0][0]["access"]
                loads["throughput"] = load_average()
                result = throughput(base, pid, token, relay_base, client, sse, data, args.repeats)
                loads["throughput_after"] = load_average()
            del data
            for size in sizes:
                data = make_png(int(size * 1e6))
                limit = 20 if len(data) <= 20 * MIB else int(len(data) / MIB) + 4
                # A thread per upload, so all of them are in the worker at once.
                threads = str(max(3, args.concurrency))
                sized_env = {**env, "MAX_UPLOAD_MB": str(limit), "GUNICORN_THREADS": threads}
                log = workdir / f"irisvue-{size:g}.log"
                with gunicorn("wsgi:app", free_port(), sized_env, log) as (base, pid):
                    load = load_average()
                    row = concurrent_memory(base, pid, token, data, args.concurrency)
                    memory.append({**row, "max_upload_mb": limit, "load_average": load})
                del data
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    report(args, result, memory, loads)
    return 0


def report(args: argparse.Namespace, result: dict, memory: list[dict], loads: dict) -> None:
    print(
        f"upload of {result['bytes'] / 1e6:.1f} MB PNG, {args.repeats} interleaved repeats, "
        f"moto S3 on loopback, S3_SSE={args.sse}, 1 gunicorn worker; "
        f"load average {loads['throughput']} (after: {loads['throughput_after']})"
    )
    verdict = "met" if result["ratio"] >= 0.8 else "NOT met"
    print(
        f"app POST /api/v1/captures/: {result['app_mb_per_s']:.1f} MB/s (median); "
        f"raw minio put_object: {result['raw_mb_per_s']:.1f} MB/s; "
        f"ratio {result['ratio']:.2f} (SPEC >= 0.80: {verdict})"
    )
    print(
        f"floor, the same body relayed untouched (bench/hello_app.py /relay, minio put_object "
        f"of request.stream): {result['relay_mb_per_s']:.1f} MB/s = {result['relay_ratio']:.2f}x "
        f"raw; the app is {result['app_to_relay']:.2f}x the relay"
    )
    app_s = ", ".join(f"{s:.2f}" for s in result["app_seconds"])
    raw_s = ", ".join(f"{s:.2f}" for s in result["raw_seconds"])
    app_cpu = statistics.median(result["app_worker_cpu_seconds"])
    relay_s = ", ".join(f"{s:.2f}" for s in result["relay_seconds"])
    serial_s = ", ".join(f"{s:.2f}" for s in result["raw_serial_seconds"])
    sealed_s = ", ".join(f"{s:.2f}" for s in result["sealed_seconds"])
    print(
        f"raw put_object with one part in flight (num_parallel_uploads=1): "
        f"{result['raw_serial_ratio']:.2f}x raw"
    )
    print(
        f"floor with SPEC's work, no parsing (bench/hello_app.py /sealed: SHA-256, Tink, "
        f"IrisVue's S3 store): {result['sealed_ratio']:.2f}x raw; the app is "
        f"{result['app_to_sealed']:.2f}x this floor"
    )
    print(
        f"  seconds per upload: app {app_s} | raw {raw_s} | relay {relay_s} | serial {serial_s} "
        f"| sealed {sealed_s}"
    )
    print(
        f"  worker CPU per app upload {app_cpu:.2f} s (median) = "
        f"{app_cpu / statistics.median(result['app_seconds']):.0%} of its wall time"
    )
    for row in memory:
        verdict = "met" if row["growth_per_upload_mib"] <= MEMORY_BUDGET_MB else "NOT met"
        print(
            f"memory, {row['concurrency']} concurrent uploads of {row['file_bytes'] / 1e6:.0f} MB "
            f"(MAX_UPLOAD_MB={row['max_upload_mb']}; load average {row['load_average']}): "
            f"idle {row['idle_rss_mib']:.0f} MiB, peak {row['peak_rss_mib']:.0f} MiB, growth "
            f"{row['growth_mib']:.0f} MiB = {row['growth_per_upload_mib']:.1f} MiB per upload "
            f"(SPEC <= {MEMORY_BUDGET_MB}: {verdict}); {row['aggregate_mb_per_s']:.1f} MB/s total"
        )
    if len(memory) >= 2:
        small, large = memory[0], memory[-1]
        print(
            f"growth per upload {large['file_bytes'] / 1e6:.0f} MB vs "
            f"{small['file_bytes'] / 1e6:.0f} MB: "
            f"{large['growth_per_upload_mib'] / max(small['growth_per_upload_mib'], 0.01):.2f}x "
            "(1.0 = independent of file size)"
        )
    busy_warning()
    path = write_results(
        "upload",
        {"settings": vars(args), "throughput": result, "memory": memory, "load": loads},
    )
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
