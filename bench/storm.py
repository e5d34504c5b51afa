"""Benchmark: the refresh storm alone (the last phase of bench/load.py), one run.

    .venv/bin/python bench/storm.py [--sessions 200] [--duplicates 0.25] [--rounds 3]

Starts gunicorn with the project's gunicorn.conf.py (2 workers; PostgreSQL and
Redis as the other bench scripts, scratch DB migrated with `flask release`,
storage in a temporary instance folder, rate limits off) and no RQ worker.
Registers --accounts accounts over HTTP (verified in SQL, biometric consent
granted), then opens --sessions fresh sessions over them (logins, setup), a
--duplicates share of them held by two clients. In each of --rounds rounds
every client sends POST /api/v1/auth/refresh at the same instant; a twin sends
the same refresh token after a random delay of up to --spread s, inside the
grace window (SPEC §3: the loser gets the winner's pair, the session lives).
Afterwards every client refreshes its newest token once more and reads /me.
Must be: no false revocation, no diverging pair, no 5xx (exit status 1
otherwise).

A quicker check of the refresh grace logic than bench/load.py; bench/run does
not call it (load.py's storm is the figure in the table). Results also go to
bench/results/storm-<time>.json. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from harness import storm
from harness.procfs import children
from harness.results import busy_warning, load_average, write_results
from harness.stack import (
    app_env,
    command_failed,
    free_port,
    gunicorn,
    prepare_services,
    scratch,
    wait_workers,
)
from harness.users import make_accounts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=32, help="sessions are spread over them")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--duplicates", type=float, default=0.25, help="share held by two")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spread", type=float, default=2.0, help="max twin delay, s")
    parser.add_argument("--setup-threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"settings": vars(args), "load_average_start": load_average()}
    try:
        with scratch("irisvue-bench-storm-") as workdir:
            env = app_env(workdir, args.workers)
            prepare_services(env, release=True)
            with gunicorn("wsgi:app", free_port(), env, workdir / "irisvue.log") as (base, pid):
                workers = wait_workers(pid, args.workers, base + "/health")
                accounts, _ = make_accounts(
                    base, args.accounts, args.setup_threads, prefix="bench-storm"
                )
                result["storm"] = storm.run_storm(
                    base,
                    accounts,
                    args.sessions,
                    args.setup_threads,
                    args.duplicates,
                    args.rounds,
                    args.spread,
                )
                result["workers_before"], result["workers_after"] = workers, children(pid)
    except subprocess.CalledProcessError as exc:
        return command_failed(exc)
    for line in storm.describe(result["storm"]):
        print(line)
    checks = {
        **storm.checks(result["storm"]),
        "no gunicorn worker replaced": result["workers_after"] == result["workers_before"],
    }
    print("checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in checks.items()))
    busy_warning()
    path = write_results("storm", {**result, "verdicts": checks})
    print(f"results: {path}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
