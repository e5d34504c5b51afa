"""SPEC §8: a client generated from the OpenAPI document does the whole flow.

The app runs as in production (gunicorn on the test stack); its document is
fetched, `openapi-python-client` generates a Python package from it (with the
repository's openapi-python-client.yaml, as README "Clients" says) into a
temporary directory, failing on any generator warning, and every step below goes
through the generated functions and models only: no raw HTTP. Background jobs
are run by the test (`run_jobs`), emails read from the test SMTP listener.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import subprocess
import sys
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.support.images import plain_png
from tests.support.users import CHEAP_ARGON2, PASSWORD, token_from

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "openapi-python-client.yaml"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "irisvue_client"


def _generate(base: str, into: Path) -> None:
    """Fetch the served document and generate the client into `into/irisvue_client`."""
    with urllib.request.urlopen(f"{base}/api/openapi.json", timeout=30) as answer:  # the document
        (into / "openapi.json").write_bytes(answer.read())
    generated = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(into / "openapi.json"),
            "--config",
            str(CONFIG),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
            "--fail-on-warning",
        ],
        cwd=into,
        capture_output=True,
        text=True,
        timeout=300,
        # Its post-hooks run ruff, which lives next to this Python.
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(into)},
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output and "Error" not in output, output


@pytest.fixture
def generated_client(live_server, consent_documents, tmp_path):
    server = live_server(
        ready="/health/ready", RATELIMIT_ENABLED="false", LOG_LEVEL="WARNING", **CHEAP_ARGON2
    )
    _generate(server.base, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]
        yield server.base, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        server.terminate()


def _api(module: str):
    return importlib.import_module(f"{PACKAGE}.api.{module}")


def test_the_whole_flow_through_the_generated_client(generated_client, mailbox, run_jobs):
    base, client_package = generated_client
    opened = []
    try:
        _flow(base, client_package, mailbox, run_jobs, opened)
    finally:
        for client in opened:  # each holds an httpx connection pool
            client.__exit__(None, None, None)


def _flow(base, client_package, mailbox, run_jobs, opened) -> None:
    m = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    auth, consent, captures = _api("auth"), _api("consent"), _api("captures")
    jobs, privacy = _api("jobs"), _api("privacy")
    from_package = importlib.import_module
    anonymous = client_package.Client(base_url=base, raise_on_unexpected_status=True)
    opened.append(anonymous)

    def signed(token: str):
        client = client_package.AuthenticatedClient(
            base_url=base, token=token, raise_on_unexpected_status=True
        )
        opened.append(client)
        return client

    # Register, verify with the token from the delivered email, /me.
    email = f"gen-{uuid.uuid4().hex[:12]}@example.com"
    register = from_package(f"{auth.__name__}.register")
    registered = register.sync(client=anonymous, body=m.Credentials(email=email, password=PASSWORD))
    assert isinstance(registered, m.Registered), registered
    assert registered.user.email == email and registered.user.is_verified is False
    run_jobs()
    verify = from_package(f"{auth.__name__}.verify_email")
    verified = verify.sync(
        client=anonymous, body=m.EmailToken(token=token_from(mailbox.to(email)[-1]))
    )
    assert isinstance(verified, m.User) and verified.is_verified
    me = from_package(f"{auth.__name__}.get_me").sync(client=signed(registered.access_token))
    assert isinstance(me, m.User) and me.id == registered.user.id

    # Consent: the current text, then a grant.
    user = signed(registered.access_token)
    documents = from_package(f"{consent.__name__}.list_consent_documents").sync(
        client=anonymous,
        type_=m.ConsentType("biometric_capture"),
        jurisdiction=m.Jurisdiction("bipa"),
    )
    assert isinstance(documents, m.ConsentDocumentList) and documents.items
    grant = from_package(f"{consent.__name__}.record_consent").sync(
        client=user,
        body=m.ConsentCreate(
            consent_type=m.ConsentType("biometric_capture"),
            jurisdiction=m.Jurisdiction("bipa"),
            granted=True,
            document_version=documents.items[0].version,
        ),
    )
    assert isinstance(grant, m.ConsentReceipt) and grant.granted and grant.job is None

    # Upload a real PNG, list, download and compare.
    photo = plain_png()
    uploaded = from_package(f"{captures.__name__}.upload_capture").sync(
        client=user,
        body=m.UploadCaptureBody(
            file=types.File(payload=io.BytesIO(photo), file_name="eye.png", mime_type="image/png")
        ),
    )
    assert isinstance(uploaded, m.Capture), uploaded
    assert uploaded.content_type == m.CaptureContentType("image/png")
    page = from_package(f"{captures.__name__}.list_captures").sync(client=user)
    assert isinstance(page, m.CapturePage) and [c.id for c in page.items] == [uploaded.id]
    content = from_package(f"{captures.__name__}.get_capture_content").sync(
        client=user, capture_id=uploaded.id
    )
    assert isinstance(content, types.File), content
    data = content.payload.read()
    assert hashlib.sha256(data).hexdigest() == uploaded.sha256 and len(data) == uploaded.size

    # Refresh, then sessions with the new pair.
    pair = from_package(f"{auth.__name__}.refresh_tokens").sync(
        client=signed(registered.refresh_token)
    )
    assert isinstance(pair, m.TokenPair)
    user = signed(pair.access_token)
    sessions = from_package(f"{auth.__name__}.list_sessions").sync(client=user)
    assert isinstance(sessions, m.SessionList)
    assert [s.current for s in sessions.items] == [True]

    # Export: request, run, poll, download with the token from the typed result, open.
    requested = from_package(f"{privacy.__name__}.request_export").sync(client=user)
    assert isinstance(requested, m.Job) and requested.status == m.JobStatus("queued")
    run_jobs()
    finished = from_package(f"{jobs.__name__}.get_job").sync(client=user, job_id=requested.id)
    assert isinstance(finished, m.Job) and finished.status == m.JobStatus("finished")
    result = finished.result
    assert isinstance(result, m.ExportResult), result
    assert result.captures == 1 and isinstance(result.download_token, str)
    archive = from_package(f"{privacy.__name__}.download_export").sync(
        client=anonymous, job_id=finished.id, token=result.download_token
    )
    assert isinstance(archive, types.File), archive
    raw = archive.payload.read()
    assert len(raw) == result.size
    with zipfile.ZipFile(io.BytesIO(raw)) as archive_zip:
        assert json.loads(archive_zip.read("account.json"))["email"] == email
        assert archive_zip.read(f"captures/{uploaded.id}.png") == data

    # The job's events, as text.
    events = from_package(f"{jobs.__name__}.get_job_events").sync(client=user, job_id=finished.id)
    assert isinstance(events, str) and "event: job" in events and "download_token" in events

    # Withdraw: the receipt carries the destruction job, typed.
    withdrawn = from_package(f"{consent.__name__}.withdraw_consent").sync(
        m.ConsentType("biometric_capture"), client=user, body=m.Withdraw()
    )
    assert isinstance(withdrawn, m.ConsentReceipt) and withdrawn.granted is False
    assert isinstance(withdrawn.job, m.Job)
    run_jobs()
    destroyed = from_package(f"{jobs.__name__}.get_job").sync(client=user, job_id=withdrawn.job.id)
    assert isinstance(destroyed.result, m.DestructionResult) and destroyed.result.captures == 1

    # Erasure with its receipt, then the password no longer signs in.
    accepted = from_package(f"{privacy.__name__}.request_erasure").sync(
        client=user, body=m.PasswordProof(password=PASSWORD)
    )
    assert isinstance(accepted, m.ErasureAccepted)
    run_jobs()
    status = from_package(f"{privacy.__name__}.get_erasure").sync(
        client=anonymous, receipt_id=accepted.receipt_id
    )
    assert isinstance(status, m.ErasureStatus), status
    assert status.status == m.PrivacyRequestStatus("completed") and status.deleted.consents == 2
    refused = from_package(f"{auth.__name__}.login").sync(
        client=anonymous, body=m.Login(email=email, password=PASSWORD)
    )
    assert isinstance(refused, m.Problem) and refused.status == 401, refused
