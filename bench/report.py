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
from harness.results import RESULTS_DIR, latest, rewrite_readme, when
from harness.rows import RENDERERS
from harness.rows.format import Row

NAMES = ("health", "auth", "upload", "privacy", "load")


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
