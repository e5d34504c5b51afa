"""Rows of bench/privacy.py: erasure and export."""

from __future__ import annotations

from .format import Row, X, verdict


def privacy_rows(r: dict) -> list[Row]:
    e, exports, flat = r["erasure"], r["export"], r.get("export_rss_ratio")
    rows: list[Row] = [
        (
            f"erasure of a user with {e['stored_before']:,} objects, request → `completed`",
            f"**{e['request_to_completed_seconds']:.1f} s** (job {e['job_seconds'] or 0:.1f} s); "
            f"{e['remaining']} left under the prefix",
            "≤ 30 s",
            verdict(e["request_to_completed_seconds"] <= 30 and e["remaining"] == 0),
        ),
        (
            "same objects deleted one by one with `storage.delete`",
            f"{e['baseline_seconds']:.1f} s → batched erasure is **{e['ratio']:.1f}{X}** faster",
            "—",
            "",
        ),
    ]
    for x in exports:
        rows.append(
            (
                f"export of {x['captures']} {X} {x['capture_bytes'] / 1e6:.0f} MB captures",
                f"{x['job_seconds']:.1f} s, {x['mb_per_s']:.1f} MB/s; job process peak RSS "
                f"{x['horse_peak_rss_mib']:.0f} MiB",
                "—",
                "",
            )
        )
    if flat is not None:
        rows.append(
            (
                f"export peak RSS, {exports[0]['captures']} vs {exports[1]['captures']} captures",
                f"**{flat:.2f}{X}**",
                f"flat in captures (≤ 1.25{X})",
                verdict(flat <= 1.25),
            )
        )
    return rows
