"""Contract fuzzing: schemathesis with every check against a real gunicorn.

The service runs as in production (gunicorn, the project's gunicorn.conf.py)
on the test stack's PostgreSQL, Redis, S3 and SMTP; rate limits are off for
this server only (they have their own tests), Argon2 is cheap because every
case logs in (tests/contract/st_hooks.py) and SSE streams end after 2 s.
The fuzzing accounts are real: registered through the API, email verified
with the token from the delivered email, biometric consent granted.

A fixed seed and a bounded number of examples per operation keep the run
reproducible and inside CI; `scripts/fuzz` runs the same test longer
(FUZZ_MAX_EXAMPLES, FUZZ_SEED). A failure prints schemathesis' own report:
each failing case with its check, the response and a curl line to replay it.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
import requests

from tests.contract.fuzz import CONSENT_RUN, CONSENT_WRITES, Account, run_schemathesis
from tests.ops.procs import VENV_BIN, child_env, start
from tests.services import free_port

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20261123"))
PASSWORD = "violet-lantern-harbour-42"
# Per schemathesis invocation; pytest's own timeout (300 s) bounds the test in CI.
RUN_TIMEOUT = float(os.environ.get("FUZZ_RUN_TIMEOUT", "1800"))
TESTED = re.compile(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)")


@pytest.fixture
def live_server(stack_env, app, consent_documents, tmp_path):
    """gunicorn serving the app on a free port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
        GUNICORN_ACCESS_LOG="off",
        LOG_LEVEL="WARNING",
        RATELIMIT_ENABLED="false",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST="1024",
        ARGON2_PARALLELISM="1",
        SSE_MAX_STREAM_SECONDS="2",
        SSE_POLL_SECONDS="0.2",
    )
    argv = [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    with start(argv, env, tmp_path / "gunicorn.log") as server:
        server.wait_ok(f"{base}/health/ready")
        yield base
        server.terminate()


def _verification_token(mailbox, email: str) -> str:
    body = mailbox.to(email)[-1].get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"code in the app: ([A-Za-z0-9_-]{20,})", body)
    assert found, body
    return found.group(1)


def _account(base: str, mailbox, run_jobs) -> Account:
    """A real user: registered, email verified, biometric consent granted."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    registered = requests.post(
        f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert registered.status_code == 201, registered.text
    run_jobs()  # delivers the verification email
    verified = requests.post(
        f"{base}/api/v1/auth/verify-email",
        json={"token": _verification_token(mailbox, email)},
        timeout=30,
    )
    assert verified.status_code == 200 and verified.json()["is_verified"], verified.text
    headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    texts = requests.get(
        f"{base}/api/v1/consents/documents",
        params={"type": "biometric_capture", "jurisdiction": "bipa"},
        timeout=30,
    ).json()["items"]
    granted = requests.post(
        f"{base}/api/v1/consents/",
        json={
            "consent_type": "biometric_capture",
            "jurisdiction": "bipa",
            "granted": True,
            "document_version": texts[0]["version"],
        },
        headers=headers,
        timeout=30,
    )
    assert granted.status_code == 201, granted.text
    return Account(email, PASSWORD)


def test_every_operation_passes_every_schemathesis_check(live_server, mailbox, run_jobs, tmp_path):
    main = _account(live_server, mailbox, run_jobs)
    consent = _account(live_server, mailbox, run_jobs)

    runs = run_schemathesis(
        live_server,
        main,
        consent,
        max_examples=MAX_EXAMPLES,
        seed=SEED,
        report_dir=tmp_path / "schemathesis",
        timeout=RUN_TIMEOUT,
    )

    selected = {}
    for run in runs:
        report = (
            f"schemathesis ({run.name} account) exited {run.returncode} after "
            f"{run.seconds:.0f} s:\n{' '.join(run.argv)}\n\n{run.output}"
        )
        assert run.returncode == 0, report
        # Guard against a run that passes because it tested little or nothing.
        counts = TESTED.search(run.output)
        assert counts, report
        chosen, total, tested = (int(n) for n in counts.groups())
        assert tested == chosen, report
        selected[run.name] = (chosen, total)
    total = selected["main"][1]
    assert selected["main"][0] == total - len(CONSENT_WRITES)
    assert selected["consent"][0] == len(CONSENT_RUN)
