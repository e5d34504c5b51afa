"""Rows of bench/health.py and bench/auth.py: /health, /me, its floor, login."""

from __future__ import annotations

from .format import Row, X, judged, noise_row, rate, ratio_text, span, split, verdict


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
