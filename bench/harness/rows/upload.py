"""Rows of bench/upload.py: the upload against the raw put, its floors, memory."""

from __future__ import annotations

from .format import Row, X, span, verdict


def relay_rows(t: dict) -> list[Row]:
    """The platform's floor for an upload (bench/hello_app.py `/relay`), if measured."""
    if "relay_mb_per_s" not in t:
        return []
    rows = [
        (
            "floor: the same body relayed untouched through gunicorn + Flask to the same S3 "
            "(minio `put_object` of the request stream), same rounds",
            f"{t['relay_mb_per_s']:.1f} MB/s = {t['relay_ratio']:.2f}{X}"
            f"{span(t['relay_ratio_rounds'])} raw; the app = "
            f"**{t['app_to_relay']:.2f}{X}** the relay",
            "—",
            "",
        )
    ]
    if "raw_serial_ratio" in t:
        rows.append(
            (
                "the raw `put_object` with one part in flight (`num_parallel_uploads=1`; "
                "raw sends 3), same rounds",
                f"{t['raw_serial_ratio']:.2f}{X}{span(t['raw_serial_ratio_rounds'])} raw",
                "—",
                "",
            )
        )
    if "sealed_ratio" in t:
        rows.append(
            (
                "floor with SPEC's work: the body's SHA-256, Tink encryption and IrisVue's S3 "
                "store (one part in flight, signed parts), no parsing, stripping, auth or "
                "database (`/sealed`), same rounds",
                f"**{t['sealed_ratio']:.2f}{X}**{span(t['sealed_ratio_rounds'])} raw; the app "
                f"= {t['app_to_sealed']:.2f}{X} this floor",
                "—",
                "clears the budget"
                if t["sealed_ratio"] >= 0.8
                else "**below the budget**: no implementation on this stack meets it here",
            )
        )
    return rows


def upload_rows(r: dict) -> list[Row]:
    t, memory = r["throughput"], r["memory"]
    growth = ", ".join(
        f"{m['growth_per_upload_mib']:.1f} MiB per upload at {m['file_bytes'] / 1e6:.0f} MB"
        for m in memory
    )
    flat = memory[-1]["growth_per_upload_mib"] / max(memory[0]["growth_per_upload_mib"], 0.01)
    worst = max(m["growth_per_upload_mib"] for m in memory)
    several = len(memory) >= 2
    shape = "flat" if flat <= 1.25 else "NOT flat"
    return [
        (
            f"{t['bytes'] / 1e6:.0f} MB upload through the app vs raw `put_object` "
            "(moto S3, SSE-S3, 1 worker)",
            f"{t['app_mb_per_s']:.1f} vs {t['raw_mb_per_s']:.1f} MB/s = **{t['ratio']:.2f}{X}**"
            f"{span(t.get('ratio_rounds', []))} (median of {len(t['app_seconds'])} uploads)",
            f"≥ 0.8{X}",
            verdict(t["ratio"] >= 0.8),
        ),
        *relay_rows(t),
        (
            f"worker memory growth, {memory[0]['concurrency']} concurrent uploads",
            growth + (f" ({flat:.2f}{X}: {shape} in file size)" if several else ""),
            "≤ 16 MB per upload",
            verdict(worst <= 16)
            + (" (flat: met)" if several and worst > 16 and flat <= 1.25 else ""),
        ),
    ]
