"""What every row of the benchmark table shares: verdicts, ranges, rates, noise."""

from __future__ import annotations

X = "\u00d7"  # the multiplication sign of the README's ratios
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
