"""Contract fuzzing: schemathesis with every check against a real gunicorn.

The service runs as in production (gunicorn, the project's gunicorn.conf.py)
on the test stack's PostgreSQL, Redis, S3 and SMTP; rate limits are off for
this server only (they have their own tests), Argon2 is cheap because every
case logs in (tests/support/st_hooks.py) and SSE streams end after 2 s.
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
from collections.abc import Iterator

import pytest
import requests

from tests.support.fuzz import CONSENT_RUN, CONSENT_WRITES, Account, run_schemathesis
from tests.support.users import CHEAP_ARGON2, PASSWORD, token_from

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20261123"))
# Per schemathesis invocation; pytest's own timeout (300 s) bounds the test in CI.
RUN_TIMEOUT = float(os.environ.get("FUZZ_RUN_TIMEOUT", "1800"))
TESTED = re.compile(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)")


@pytest.fixture
def fuzz_server(live_server, consent_documents) -> Iterator[str]:
    """gunicorn serving the app for the fuzzer; yields its base URL."""
    settings = {
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "GUNICORN_ACCESS_LOG": "off",
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": "false",
        "SSE_MAX_STREAM_SECONDS": "2",
        "SSE_POLL_SECONDS": "0.2",
        **CHEAP_ARGON2,
    }
    server = live_server(ready="/health/ready", **settings)
    yield server.base
    server.terminate()


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
        json={"token": token_from(mailbox.to(email)[-1])},
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


def test_every_operation_passes_every_schemathesis_check(fuzz_server, mailbox, run_jobs, tmp_path):
    main = _account(fuzz_server, mailbox, run_jobs)
    consent = _account(fuzz_server, mailbox, run_jobs)

    runs = run_schemathesis(
        fuzz_server,
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
