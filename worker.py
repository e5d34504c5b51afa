"""IrisVue's RQ worker: `python worker.py [--burst] [--no-cron]`.

Listens to the `emails`, `default` and `exports` queues in that priority
order, with the JSON serializer, and runs RQ's cron scheduler beside it (the
outbox relay every JOB_RELAY_INTERVAL_SECONDS). `--burst` relays the outbox
once, drains the queues and exits. The plain `rq worker --serializer json
emails default exports` CLI runs the same jobs too (without the cron part).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="drain the queues, then exit")
    parser.add_argument(
        "--no-cron",
        action="store_true",
        help="no cron scheduler (e.g. on extra worker replicas)",
    )
    args = parser.parse_args(argv)

    from irisvue.config import ConfigError
    from irisvue.extensions import db
    from irisvue.jobs.dispatch import run_worker
    from irisvue.jobs.runner import worker_app
    from irisvue.memory import tune_malloc

    tune_malloc()  # export archives stream through 1 MiB segments: see irisvue/memory.py
    try:
        app = worker_app()  # reads a local .env, if any; real environment variables win
    except ConfigError as exc:
        sys.stderr.write(f"irisvue worker: refusing to start: {exc}\n")
        return 1
    if not app.config.get("REDIS_URL"):
        sys.stderr.write(
            "irisvue worker: REDIS_URL is not set; jobs run inline in the web process\n"
        )
        return 1
    with app.app_context():
        engine = db.engine
        # Each job runs in a forked work horse: it must open its own database
        # connections, never reuse the parent's sockets.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        ran = run_worker(app, burst=args.burst, cron=not args.no_cron)
    if args.burst:
        print(f"irisvue worker: ran {ran} job(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
