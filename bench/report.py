"""Renders the benchmark table from the latest bench/results/<name>-<time>.json of each script.

    .venv/bin/python bench/report.py [--since 20261123T140000Z] [--readme]

Prints one Markdown table: every figure of bench/health.py, auth.py,
upload.py, privacy.py and load.py with its ratio to the baseline measured in
the same run, and the budget it is held to. `--since` marks results older
than that time as stale (bench/run passes its own start). `--readme` also
rewrites the block between `<!-- bench:begin -->` and `<!-- bench:end -->` in
README.md. Exit status 1 when a script has no result at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import ROOT
from harness.loadgen import DEFAULT_MIX
from harness.results import RESULTS_DIR, latest, rewrite_readme, when

X = "\u00d7"  # the multiplication sign of the README's ratios
NAMES = ("health", "auth", "upload", "privacy", "load")
Row = tuple[str, str, str, str]  # benchmark, figure, budget, verdict


def verdict(ok: bool, close: bool = False) -> str:
    return "met" if ok else ("not met (close)" if close else "**not met**")


def span(values: list[float], fmt: str = ".2f") -> str:
    """The "[min-max]" of some rounds' values, or "" for a single round."""
    if len(values) < 2:
        return ""
    return f" [{min(values):{fmt}}-{max(values):{fmt}}]"


def rate(row: dict) -> str:
    """Median req/s of a target's rounds with the min-max (older results: one figure)."""
    rounds = row.get("rounds_rps", [row["requests_per_s"]])
    return f"{row.get('requests_per_s_median', row['requests_per_s']):.0f}{span(rounds, '.0f')}"


def split(row: dict) -> str:
    """Each worker's share of the server CPU in the median round ("51/49%")."""
    shares = row.get("worker_cpu_share") or []
    return "/".join(f"{share * 100:.0f}" for share in shares) + "%" if shares else "n/a"


def noisy(r: dict) -> bool:
    return bool(r.get("noise", {}).get("too_noisy"))


def judged(r: dict, ok: bool, close: bool = False) -> str:
    """The verdict, or "too noisy to judge" when the run's hello baseline moved too much."""
    text = verdict(ok, close)
    return f"{text} — too noisy to judge" if noisy(r) else text


def ratio_text(r: dict, name: str, rounds_name: str | None = None) -> str:
    """`ratios[name]` with the min-max of its rounds (`ratio_rounds[rounds_name or name]`)."""
    rounds = r.get("ratio_rounds", {}).get(rounds_name or name, {}).get("rounds", [])
    return f"**{r['ratios'][name]:.2f}{X}**{span(rounds)}"


def noise_row(r: dict, name: str) -> list[Row]:
    noise = r.get("noise")
    if not noise:
        return []
    return [(f"noise of the `{name}` run", noise["text"], f"hello ≤ {noise['limit']:.0%}", "")]


def health_rows(r: dict) -> list[Row]:
    res, ratios = r["results"], r["ratios"]
    health, ready, hello = res["health"], res["ready"], res["hello"]
    rounds = r["settings"].get("rounds", 1)
    return [
        (
            f'`GET /health` vs bare Flask "hello", median of {rounds} rounds [min-max]',
            f"{rate(health)} vs {rate(hello)} req/s = {ratio_text(r, 'health/hello')} "
            f"({ratios['health/hello by CPU']:.2f}{X} by server CPU/request: "
            f"{health.get('cpu_us_per_req_median', health['cpu_us_per_req']):.0f} vs "
            f"{hello.get('cpu_us_per_req_median', hello['cpu_us_per_req']):.0f} µs); "
            f"p99 {health.get('p99_ms_median', health['p99_ms']):.0f} ms; "
            f"worker CPU split {split(health)} (hello {split(hello)})",
            f"≥ 0.9{X}",
            judged(r, ratios["health/hello"] >= 0.9, ratios["health/hello"] >= 0.85),
        ),
        (
            "`GET /health/ready` vs hello",
            f"{ready['requests_per_s']:.0f} req/s = {ratios['ready/hello']:.2f}{X} "
            "(checks db, Redis, storage on every call)",
            "—",
            "",
        ),
        *noise_row(r, "health"),
    ]


def floor_rows(r: dict) -> list[Row]:
    """The platform's floor for a database read (bench/hello_app.py `/floor`), if measured."""
    floor = r["me"].get("floor")
    if floor is None:
        return []
    ratios = r["ratios"]
    return [
        (
            "floor: bare Flask + one indexed PostgreSQL query (no auth, no ORM, no hooks), "
            "same rounds",
            f"{rate(floor)} req/s = {ratios['floor/hello (req/s, same run)']:.2f}{X} hello; "
            f"p99 {floor.get('p99_ms_median', floor['p99_ms']):.0f} ms"
            f"{span(floor.get('rounds_p99_ms', []), '.0f')}; `/me` = "
            f"**{ratios['me/floor (req/s, same run)']:.2f}{X}** the floor",
            "—",
            "",
        )
    ]


def auth_rows(r: dict) -> list[Row]:
    me, hello, login, ratios = r["me"]["me"], r["me"]["hello"], r["login"], r["ratios"]
    ceiling = r["argon2"]["ceiling"]
    cores = r["argon2"].get("cores", r["cpus"])  # older results: the machine's count
    cpu_ms = (r["argon2"]["before"]["cpu_s"] + r["argon2"]["after"]["cpu_s"]) / 2 * 1000
    peaks = " / ".join(f"{v:.0f}" for v in login["worker_peak_rss_mib"].values())
    idle = max(login["worker_idle_rss_mib"].values())
    peak_ok = max(login["worker_peak_rss_mib"].values()) <= r.get("rss_budget_mib", 300)
    rounds = r["settings"].get("rounds", 1)
    me_ratio = ratios["me/hello (req/s, same run)"]
    p99 = me.get("p99_ms_median", me["p99_ms"])
    login_rounds = [x["requests_per_s"] for x in login.get("all_rounds", [login])]
    return [
        (
            f"`GET /api/v1/auth/me`, {r['settings']['me_connections']} connections, "
            f"median of {rounds} rounds [min-max]",
            f"**{rate(me)} req/s** vs hello {rate(hello)} = "
            f"{ratio_text(r, 'me/hello (req/s, same run)', 'me/hello')} "
            f"({ratios['me/hello by CPU']:.2f}{X} by CPU: "
            f"{me.get('cpu_us_per_req_median', me['cpu_us_per_req']):.0f} µs/request); "
            f"p50 {me['p50_ms']:.0f} ms, p99 {p99:.0f} ms"
            f"{span(me.get('rounds_p99_ms', []), '.0f')}; "
            f"{ratios['me/peer 331 req/s']:.2f}{X} the FastAPI template's 331 req/s; "
            f"worker CPU split {split(me)}",
            f"≥ 0.25{X} hello, p99 ≤ 50 ms",
            judged(r, me_ratio >= 0.25 and p99 <= 50),
        ),
        *floor_rows(r),
        (
            f"login, {r['settings']['login_connections']} connections",
            f"{login['requests_per_s']:.2f}{span(login_rounds)} logins/s vs Argon2 ceiling "
            f"{ceiling:.2f}/s ({cores} usable cores ÷ {cpu_ms:.0f} ms CPU per verify) = "
            f"**{ratios['login/ceiling']:.2f}{X}**{span(login.get('ratio_rounds', []))} "
            f"({ratios['login/ceiling by CPU']:.2f}{X} by CPU); "
            f"p99 {login['p99_ms'] / 1000:.1f} s",
            f"≥ 0.9{X}",
            judged(r, ratios["login/ceiling"] >= 0.9),
        ),
        (
            "worker peak RSS during those logins",
            f"{peaks} MiB (idle {idle:.0f} MiB), worker replaced: {login['worker_replaced']}",
            "≤ 300 MiB",
            verdict(peak_ok and not login["worker_replaced"]),
        ),
        *noise_row(r, "auth"),
    ]


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


def load_rows(r: dict) -> list[Row]:
    load, storm, solo, checks = r["load"], r["storm"], r["solo_p50_ms"], r["verdicts"]
    s = r["settings"]
    endpoints = load["endpoints"]
    latencies = ", ".join(
        f"{name} {row['p50_ms']:.0f}/{row['p99_ms']:.0f}" for name, row in endpoints.items()
    )
    # Weighted by each endpoint's share of the requests, like the load itself.
    inflation = sum(row["requests"] * row["p50_ms"] for row in endpoints.values()) / max(
        sum(row["requests"] * solo.get(name, 0.0) for name, row in endpoints.items()), 1e-9
    )
    share = load["cpu_share_of_one_core"]
    workers = [v for k, v in load["peak_rss_mib"].items() if k.startswith("worker ")]
    others = {k: v for k, v in load["peak_rss_mib"].items() if not k.startswith("worker ")}
    twins = f"{storm['twin_sessions']} held by two clients"
    lost = r.get("after_withdrawal_captures", {})
    lost_note = (
        f"; {lost['404']} of {sum(lost.values())} captures uploaded after a withdrawal and "
        "re-grant later destroyed by that withdrawal's job"
        if lost.get("404")
        else ""
    )
    extra = f" with {', '.join(s['set'])}" if s.get("set") else ""
    if s.get("mix", DEFAULT_MIX) != DEFAULT_MIX:
        extra += f", mix {s['mix']}"
    return [
        (
            f"mixed load, {s['concurrency']} users {X} {load['seconds']:.0f} s "
            "(login, refresh, /me, consent read/write/withdraw, "
            f"{s['png_kb']} KiB uploads; RQ worker on){extra}",
            f"**{load['requests_per_s']:.0f} req/s**; 5xx {load['status_5xx']}, 429 "
            f"{load['status_429']}, other unexpected "
            f"{load['unexpected'] - load['status_5xx'] - load['status_429']}; "
            f"CPU: server {share['server']:.2f}, client {share['client']:.2f} cores{lost_note}",
            "zero 5xx, no 429",
            verdict(checks["no 5xx under load"] and checks["no 429 under load"]),
        ),
        (
            "latency under that load, p50/p99 ms",
            f"{latencies}; p50 = **{inflation:.1f}{X}** the same requests sent alone",
            "—",
            "",
        ),
        (
            "peak RSS under that load (VmHWM)",
            "workers "
            + " / ".join(f"{v:.0f}" for v in workers)
            + " MiB; "
            + ", ".join(f"{k} {v:.0f}" for k, v in others.items())
            + f" MiB; worker replaced: {load['worker_replaced']}",
            "≤ 300 MiB per worker",
            verdict(max(workers, default=0) <= 300 and not load["worker_replaced"]),
        ),
        (
            f"refresh storm: {storm['sessions']} sessions ({twins}) {X} "
            f"{len(storm['rounds'])} rounds at once",
            f"false revocations **{storm['false_revocations']}**, diverging pairs "
            f"{storm['divergent_pairs']}, 5xx {storm['status_5xx']}; p99 "
            f"{max(x['p99_ms'] for x in storm['rounds']):.0f} ms",
            "zero",
            verdict(
                checks["storm: no 5xx"]
                and checks["storm: no false revocation"]
                and checks["storm: twins got the same pair"]
            ),
        ),
    ]


RENDERERS = {
    "health": health_rows,
    "auth": auth_rows,
    "upload": upload_rows,
    "privacy": privacy_rows,
    "load": load_rows,
}


def render(results: Path, since: str | None) -> tuple[str, list[str]]:
    rows: list[Row] = []
    sources, missing = [], []
    for name in NAMES:
        result = latest(name, results)
        if result is None:
            missing.append(name)
            continue
        stale = " — **stale**: from before this run" if since and result["when"] < since else ""
        sources.append(
            f"`{name}` {when(result['when'])}, load average {result['load_average']}{stale}"
        )
        try:
            rows += RENDERERS[name](result)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
            rows.append((f"`bench/{name}.py`", f"result not readable: {exc!r}", "", ""))
    cpus = max((latest(n, results) or {}).get("cpus", 0) or 0 for n in NAMES)
    lines = [
        f"Latest figures (`bench/report.py` over `bench/results/`; {cpus}-core machine, "
        "the benchmarks' own clients share its cores):",
        "",
        "| benchmark | figure | budget (SPEC §7) | |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "Runs: " + "; ".join(sources) + ".",
    ]
    if missing:
        lines.append("No result yet: " + ", ".join(f"`bench/{n}.py`" for n in missing) + ".")
    return "\n".join(lines), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", help="results older than this stamp (UTC) are stale")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's block")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--readme-path", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    block, missing = render(args.results, args.since)
    print(block)
    if args.readme:
        rewrite_readme(args.readme_path, block)
        print(f"\nrewrote the benchmark block of {args.readme_path}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
