"""Email jobs of the auth flows.

Job args carry nothing but the user id: the handler looks the address up when
it runs and creates the single-use token itself (only its SHA-256 is stored),
so neither the address nor the token ever reaches Redis, the jobs table or a
dashboard. A retry issues a fresh token, which voids the undelivered one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from flask import current_app

from irisvue.auth.email_tokens import PASSWORD_RESET, VERIFY_EMAIL, issue_email_token
from irisvue.auth.notices import NOTICE_JOB
from irisvue.extensions import db
from irisvue.jobs.registry import job_handler
from irisvue.mail import render_email, send_email
from irisvue.models import Job, SecurityNotice, User


def _link(setting: str, token: str) -> str:
    base = current_app.config[setting]
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({'token': token})}"


def _recipient(job: Job) -> User | None:
    user = db.session.get(User, job.user_id) if job.user_id else None
    return user if user is not None and user.is_active else None


@job_handler("email.verify_email", queue="emails", timeout=60)
def send_verification_email(job: Job) -> dict[str, Any]:
    """Mail a 24 h single-use link that verifies the account's address."""
    user = _recipient(job)
    if user is None:
        return {"sent": False, "reason": "no_recipient"}
    if user.is_verified:
        return {"sent": False, "reason": "already_verified"}
    hours = current_app.config["VERIFY_EMAIL_TOKEN_HOURS"]
    address = user.email
    token = issue_email_token(user.id, VERIFY_EMAIL, timedelta(hours=hours), address)
    subject, text, html = render_email(
        "verify_email", token=token, link=_link("VERIFY_EMAIL_URL", token), expires_hours=hours
    )
    send_email(address, subject, text, html)
    return {"sent": True}


@job_handler("email.password_reset", queue="emails", timeout=60)
def send_password_reset_email(job: Job) -> dict[str, Any]:
    """Mail a 1 h single-use link that sets a new password."""
    user = _recipient(job)
    if user is None:
        return {"sent": False, "reason": "no_recipient"}
    minutes = current_app.config["PASSWORD_RESET_TOKEN_MINUTES"]
    address = user.email
    token = issue_email_token(user.id, PASSWORD_RESET, timedelta(minutes=minutes), address)
    subject, text, html = render_email(
        "password_reset",
        token=token,
        link=_link("PASSWORD_RESET_URL", token),
        expires_minutes=minutes,
    )
    send_email(address, subject, text, html)
    return {"sent": True}


@job_handler(NOTICE_JOB, queue="emails", timeout=60)
def send_security_notice(job: Job) -> dict[str, Any]:
    """Tell an address that the account's password or email changed; then forget it."""
    notice = db.session.get(SecurityNotice, uuid.UUID(str(job.args.get("notice_id"))))
    if notice is None:  # sent already, or the account is gone
        return {"sent": False, "reason": "no_notice"}
    address, event = notice.address, notice.event
    subject, text, html = render_email(f"security_{event}")
    send_email(address, subject, text, html)
    db.session.delete(notice)
    db.session.commit()
    return {"sent": True, "event": event}
