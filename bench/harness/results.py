"""bench/results/<name>-<time>.json (written by each script, read by bench/report.py) and
README.md's benchmark block."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import ROOT

RESULTS_DIR = ROOT / "bench" / "results"
STAMP = "%Y%m%dT%H%M%SZ"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def busy_warning() -> None:
    if os.getloadavg()[0] > (os.cpu_count() or 1) + 0.5:
        print("bench: the machine is busy; trust the CPU-based and same-run ratios")


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>-<time>.json, with the time, CPU count and load average."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime(STAMP)
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(
        json.dumps(
            {"when": stamp, "cpus": os.cpu_count(), "load_average": load_average(), **payload},
            indent=2,
            default=str,
        )
    )
    return path


def latest(name: str, results: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """The newest result of one script, None when it has none."""
    paths = sorted(results.glob(f"{name}-*.json"))
    return json.loads(paths[-1].read_text()) if paths else None


def when(stamp: str) -> str:
    """A result's `when` stamp for people: 2026-11-23 14:00 UTC."""
    return datetime.strptime(stamp, STAMP).strftime("%Y-%m-%d %H:%M UTC")


def rewrite_readme(readme: Path, block: str) -> None:
    """Replaces the text between `<!-- bench:begin -->` and `<!-- bench:end -->`."""
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"bench: no {BEGIN} ... {END} block in {readme}")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text, count=1))
