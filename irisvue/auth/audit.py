"""Security events and the keyed pseudonyms that keep personal data out of them."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import structlog
from flask import current_app, has_request_context, request

from irisvue.extensions import db
from irisvue.models import AuditEvent

log = structlog.get_logger(__name__)


def pseudonym(purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` under a key derived from SECRET_KEY, per purpose.

    Stable, so events and counters about one IP or account can be correlated;
    not reversible without the secret (a plain hash of an IPv4 address is).
    """
    key = hmac.new(
        current_app.config["SECRET_KEY"].encode(), f"irisvue:{purpose}".encode(), hashlib.sha256
    ).digest()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def record(
    event: str,
    *,
    user_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an event to the current transaction (the caller's commit persists it)."""
    ip = client_ip()
    db.session.add(
        AuditEvent(
            event=event,
            user_id=user_id,
            session_id=session_id,
            ip_hash=pseudonym("audit-ip", ip) if ip else None,
            details=details or None,
        )
    )
    log.info(
        "security_event",
        security_event=event,
        user_id=str(user_id) if user_id else None,
        session_id=str(session_id) if session_id else None,
    )
