"""Outgoing email: Jinja templates rendered here, sent over SMTP by jobs.

Emails are only ever sent from a job (`email.*` kinds on the `emails` queue),
never from a request: SMTP is slow and may be down. Without SMTP_HOST the
embedded development stack writes each message to the log instead.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

import structlog
from flask import current_app, render_template
from jinja2 import TemplateNotFound
from sqlalchemy import select

from irisvue.extensions import db
from irisvue.jobs.registry import JobError, job_handler
from irisvue.models import Job, User, UserIdentity
from irisvue.models.base import utcnow

log = structlog.get_logger(__name__)


class MailDeliveryError(JobError):
    """The message was not accepted; the code says why, never to whom."""

    code = "smtp_error"


def render_email(template: str, **context: Any) -> tuple[str, str, str | None]:
    """Render `email/<template>.subject.txt`, `.txt` and (if present) `.html`.

    The templates see `app_name` (APP_NAME) besides `context`.
    """
    app_name = current_app.config["APP_NAME"]
    context = {"app_name": app_name, "APP_NAME": app_name, **context}
    subject = render_template(f"email/{template}.subject.txt", **context)
    text = render_template(f"email/{template}.txt", **context)
    try:
        html: str | None = render_template(f"email/{template}.html", **context)
    except TemplateNotFound:
        html = None
    return " ".join(subject.split()), text, html


def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    sender = current_app.config["MAIL_FROM"]
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # no CR/LF in a header
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _failure_code(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "smtp_auth_failed"
    if isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused):
        return "smtp_refused"
    if isinstance(exc, smtplib.SMTPServerDisconnected | TimeoutError | OSError):
        return "smtp_unavailable"
    return "smtp_error"


def _connect(config: Any, host: str) -> smtplib.SMTP:
    """Implicit TLS (SMTP_SSL, port 465 usually) or a plain connection (STARTTLS next)."""
    timeout = config["SMTP_TIMEOUT_SECONDS"]
    if config.get("SMTP_SSL"):
        return smtplib.SMTP_SSL(
            host, config["SMTP_PORT"], timeout=timeout, context=ssl.create_default_context()
        )
    return smtplib.SMTP(host, config["SMTP_PORT"], timeout=timeout)


def mail_paused(address: str) -> bool:
    """Apple said the person turned off forwarding for this private-relay address."""
    return (
        db.session.scalar(
            select(UserIdentity.id)
            .where(UserIdentity.email == address.lower(), UserIdentity.email_disabled.is_(True))
            .limit(1)
        )
        is not None
    )


def send_email(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one message over SMTP (or, without SMTP_HOST in development, log it).

    Raises MailDeliveryError, whose traceback carries no address: RQ stores
    tracebacks in Redis and logs them.
    """
    config = current_app.config
    if mail_paused(to):  # `email-disabled` from Apple: nothing goes to the relay address
        log.info("email_paused_private_relay", subject=" ".join(subject.split()))
        return
    message = build_message(to, subject, text, html)
    host = config.get("SMTP_HOST")
    if not host:
        if config["IRISVUE_ENV"] == "production":
            raise MailDeliveryError("mail_not_configured")
        # Embedded development stack only: the developer reads mail in the log.
        log.info("email_not_sent_no_smtp", to=to, subject=message["Subject"], text=text)
        return
    code = None
    try:
        with _connect(config, host) as smtp:
            if config["SMTP_STARTTLS"] and not config.get("SMTP_SSL"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        code = _failure_code(exc)
        log.warning("email_failed", code=code, error=type(exc).__name__)
    if code is not None:
        raise MailDeliveryError(code)  # outside `except`: no chained traceback


@job_handler("email.welcome", queue="emails", timeout=60)
def send_welcome_email(job: Job) -> dict[str, Any]:
    """The welcome email; the address is looked up now, never carried in args."""
    user = db.session.get(User, job.user_id) if job.user_id else None
    if user is None or not user.is_active:
        return {"sent": False, "reason": "no_recipient"}
    subject, text, html = render_email("welcome")
    send_email(user.email, subject, text, html)
    return {"sent": True}
