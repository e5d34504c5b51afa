"""The embedded stack (no REDIS_URL: jobs run inline on commit) and the mail module."""

from __future__ import annotations

import pytest

from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.jobs.queues import get_queues
from irisvue.mail import MailDeliveryError, render_email, send_email
from irisvue.models import Job
from tests.support.stack import free_port


@pytest.fixture
def inline_app(make_app, monkeypatch):
    def _make(**overrides):
        monkeypatch.delenv("REDIS_URL")
        return make_app(**overrides)

    return _make


def _submit_welcome(app, user) -> Job:
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        outbox.commit()
        db.session.refresh(job)
        db.session.expunge(job)
        return job


def test_without_redis_jobs_run_inline_on_commit(inline_app, make_user, mailbox):
    app = inline_app()
    assert get_queues(app) is None
    user = make_user()
    job = _submit_welcome(app, user)
    assert (job.status, job.attempts, job.result) == ("finished", 1, {"sent": True})
    assert job.dispatched_at is not None
    assert len(mailbox.to(user.email)) == 1


def test_inline_failure_does_not_break_the_commit(inline_app, make_user, mailbox):
    app = inline_app(SMTP_PORT=free_port())
    user = make_user()
    job = _submit_welcome(app, user)  # raises nothing: the caller's change is committed
    assert (job.status, job.attempts, job.error) == ("failed", 1, "smtp_unavailable")
    assert mailbox.messages == []


def test_inline_relay_runs_what_a_crash_left_behind(inline_app, make_user, mailbox):
    app = inline_app()
    user = make_user()
    with app.app_context():
        job = outbox.submit("email.welcome", user_id=user.id)
        db.session.commit()  # as if the process died before dispatching
        assert outbox.relay(min_age_seconds=0) == 1
        assert db.session.get(Job, job.id).status == "finished"
    assert len(mailbox.to(user.email)) == 1


def test_without_smtp_host_development_mail_goes_to_the_log(inline_app, make_user, mailbox, capsys):
    app = inline_app(SMTP_HOST=None, LOG_LEVEL="INFO")
    user = make_user()
    job = _submit_welcome(app, user)
    assert job.status == "finished"
    assert mailbox.messages == []
    logged = capsys.readouterr().out
    assert "email_not_sent_no_smtp" in logged and user.email in logged


def test_production_never_logs_mail_it_cannot_send(app):
    app.config.update(SMTP_HOST=None, IRISVUE_ENV="production")
    with app.app_context(), pytest.raises(MailDeliveryError) as raised:
        send_email("someone@example.com", "Subject", "Body")
    assert raised.value.code == "mail_not_configured"


def test_render_email_uses_the_app_name(make_app):
    app = make_app(APP_NAME="Irisio")
    with app.app_context():
        subject, text, html = render_email("welcome")
    assert subject == "Welcome to Irisio"
    assert "Irisio" in text and "Irisio" in html
    assert "\n" not in subject


def test_send_email_multipart_and_no_header_injection(app, mailbox):
    with app.app_context():
        send_email(
            "reader@example.com",
            "Hello\r\nBcc: intruder@example.com",
            "plain body",
            "<p>html body</p>",
        )
    [message] = mailbox.to("reader@example.com")
    assert message["Subject"] == "Hello Bcc: intruder@example.com"
    assert message["Bcc"] is None
    assert message["Message-ID"].endswith("@irisvue.test>")
    assert message.get_body(("plain",)).get_content().strip() == "plain body"
    assert message.get_body(("html",)).get_content().strip() == "<p>html body</p>"


def test_embedded_stack_on_sqlite_runs_jobs_inline(monkeypatch, tmp_path, stack_env, mailbox):
    """No DATABASE_URL, no REDIS_URL: SQLite in the instance folder, jobs inline."""
    import flask_migrate

    from irisvue import create_app
    from irisvue.models import User

    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("IRISVUE_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    with app.app_context():
        try:
            flask_migrate.upgrade()
            user = User(email="sqlite.user@example.com")
            db.session.add(user)
            db.session.commit()
            job = outbox.submit("email.welcome", user_id=user.id)
            outbox.commit()
            assert (job.status, job.result) == ("finished", {"sent": True})

            stranded = outbox.submit("email.welcome", user_id=user.id)
            db.session.commit()
            assert outbox.relay(min_age_seconds=3600) == 0
            assert outbox.relay(min_age_seconds=0) == 1
            assert db.session.get(Job, stranded.id).status == "finished"
        finally:
            db.session.remove()
            db.engine.dispose()
    assert len(mailbox.to("sqlite.user@example.com")) == 2


def test_smtp_ssl_sends_over_implicit_tls(app, tmp_path, monkeypatch):
    """SMTP_SSL=true speaks TLS from the first byte and verifies the server."""
    from tests.support.tls import SmtpsMailbox, self_signed

    cert, key = self_signed(tmp_path)
    with SmtpsMailbox(cert, key) as smtps:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtps.port, SMTP_TIMEOUT_SECONDS=2)
        # A plain SMTP client gets no greeting it understands from an SMTPS port.
        app.config.update(SMTP_SSL=False, SMTP_STARTTLS=False)
        with app.app_context(), pytest.raises(MailDeliveryError):
            send_email("tls-reader@example.com", "Plain", "not sent")
        # Implicit TLS, with a server certificate the client does not trust: refused.
        app.config.update(SMTP_SSL=True)
        with app.app_context(), pytest.raises(MailDeliveryError):
            send_email("tls-reader@example.com", "Untrusted", "not sent")
        # Trusted (the system's CA file is this test's certificate): delivered.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with app.app_context():
            send_email("tls-reader@example.com", "Over TLS", "sealed")
    assert [m["Subject"] for m in smtps.messages] == ["Over TLS"]
