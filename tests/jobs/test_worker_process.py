"""The real worker processes: `worker.py` (burst and with its cron scheduler) and `rq worker`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from rq import cron_scheduler_registry
from rq.cron import CronJob, CronScheduler
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer

from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.cron import build_scheduler
from irisvue.jobs.runner import run_relay
from irisvue.models import Job
from irisvue.models.base import utcnow
from tests.support.jobs import rq_job_hash

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _stranded_welcome(app, user) -> uuid.UUID:
    """A committed row the outbox never handed over, old enough for the relay."""
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        job.created_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
        return job.id


def _dispatched_welcome(app, user) -> uuid.UUID:
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        outbox.commit()
        return job.id


def _status(app, job_id: uuid.UUID) -> str:
    with app.app_context():
        status = db.session.get(Job, job_id).status
        db.session.remove()
        return status


def _run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=timeout
    )


def test_worker_py_burst_relays_and_drains(app, make_user, mailbox):
    first, second = make_user(), make_user()
    dispatched = _dispatched_welcome(app, first)
    stranded = _stranded_welcome(app, second)

    done = _run([sys.executable, "worker.py", "--burst"])

    assert done.returncode == 0, done.stderr[-2000:]
    assert "ran 2 job(s)" in done.stdout
    assert _status(app, dispatched) == "finished"
    assert _status(app, stranded) == "finished"
    assert len(mailbox.to(first.email)) == 1
    assert len(mailbox.to(second.email)) == 1


def test_plain_rq_cli_runs_outbox_jobs(app, make_user, mailbox, stack_env):
    user = make_user()
    job_id = _dispatched_welcome(app, user)
    rq = str(Path(sys.executable).parent / "rq")
    argv = [rq, "worker", "--burst", "--serializer", "json", "--url", stack_env["REDIS_URL"]]
    done = _run([*argv, "emails", "default", "exports"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert _status(app, job_id) == "finished"
    assert len(mailbox.to(user.email)) == 1


def test_worker_py_cron_relays_the_outbox(app, make_user, mailbox, tmp_path, redis_raw):
    """The long-running worker: its cron scheduler enqueues the relay at start."""
    user = make_user()
    job_id = _stranded_welcome(app, user)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _status(app, job_id) != "finished":
            assert proc.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.5)
        assert _status(app, job_id) == "finished"
        assert len(mailbox.to(user.email)) == 1
        [scheduler] = CronScheduler.all(redis_raw)
        assert [job.name for job in scheduler.get_jobs()] == [
            "irisvue.outbox.relay",
            "irisvue.retention.sweep",
        ]

        proc.send_signal(signal.SIGTERM)  # warm shutdown, cron child included
        assert proc.wait(30) == 0, log_path.read_text()[-2000:]
        assert cron_scheduler_registry.get_keys(redis_raw) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        # Nothing of the group (cron child, RQ scheduler) may outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_cron_jobs_are_json_unlike_rq_defaults(app, make_user, mailbox, run_jobs, redis_raw):
    # rq 3.0's stock CronJob enqueues with pickle, which our JSON workers cannot read ...
    stock = CronJob(queue_name="default", func=run_relay, interval=60).enqueue(redis_raw)
    assert rq_job_hash(redis_raw, stock.id)["data"][:1] == b"\x80"  # pickle protocol marker
    stock.delete()
    redis_raw.delete("rq:queue:default")

    # ... ours enqueue JSON, and a JSON worker runs them.
    user = make_user()
    job_id = _stranded_welcome(app, user)
    with app.app_context():
        scheduler = build_scheduler(app, redis_raw)
        [cron_job] = scheduler.enqueue_jobs()
    [relay_id] = cron_job.get_job_ids(redis_raw)
    assert rq_job_hash(redis_raw, relay_id)["data"] == (
        b'["irisvue.jobs.runner.run_relay", null, [], {}]'
    )
    relay_job = RQJob.fetch(relay_id, connection=redis_raw, serializer=JSONSerializer)
    assert relay_job.failure_ttl == app.config["JOB_FAILURE_TTL_SECONDS"]
    assert run_jobs() == 2  # the relay, then the welcome email it handed over
    assert _status(app, job_id) == "finished"
    assert len(mailbox.to(user.email)) == 1
