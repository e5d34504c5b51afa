"""Apple's server-to-server notifications for Sign in with Apple.

The body is `{"payload": "<JWT>"}`, signed by Apple (checked like an ID token:
Apple's JWKS, `iss`, `aud` ∈ APPLE_CLIENT_IDS, `iat`). Its `events` claim (a
JSON string, or an object) names `type`, `sub` (the Apple user), `event_time`
and, for the email events, `email`. Each event is handled once: the hash of
its `jti` (or of `sub` + `event_time` + `type`) goes into `provider_events`
in the same transaction as the effect.

* `consent-revoked`: the identity is unlinked, the sessions it started revoked.
* `account-delete` / `account-deleted`: when Apple was the account's only way
  in, erasure starts as if the person had asked (the privacy feature listens
  to `account_deletion_requested`); otherwise as `consent-revoked`.
* `email-disabled` / `email-enabled`: mail to that relay address pauses/resumes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog
from flask import current_app
from sqlalchemy.exc import IntegrityError

from irisvue.auth import apple_duties, audit, identities
from irisvue.auth.providers import provider_config
from irisvue.auth.providers.id_tokens import TokenRejectedError, verify_signed
from irisvue.auth.signals import account_deletion_requested
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import ProviderEvent, UserIdentity

log = structlog.get_logger(__name__)

CONSENT_REVOKED = "consent-revoked"
ACCOUNT_DELETE = ("account-delete", "account-deleted")
EMAIL_EVENTS = {"email-disabled": True, "email-enabled": False}
KNOWN = {CONSENT_REVOKED, *ACCOUNT_DELETE, *EMAIL_EVENTS}


def _invalid(detail: str) -> APIError:
    return APIError(400, "invalid_notification", detail)


def _event(payload: str) -> tuple[dict[str, Any], str]:
    config = provider_config("apple")
    db.session.rollback()
    try:
        claims = verify_signed(config, payload, require=("iat",))
    except TokenRejectedError as exc:
        log.info("apple_notification_rejected", reason=exc.reason)
        raise _invalid("The payload is not a valid notification signed by Apple.") from None
    events = claims.get("events")
    if isinstance(events, str):
        try:
            events = json.loads(events)
        except ValueError:
            raise _invalid("The notification's events are not JSON.") from None
    if (
        not isinstance(events, dict)
        or not isinstance(events.get("type"), str)
        or not isinstance(events.get("sub"), str)
    ):
        raise _invalid("The notification carries no event.")
    jti = claims.get("jti")
    key = (
        f"jti:{jti}"
        if isinstance(jti, str) and jti
        else f"event:{events['sub']}:{events.get('event_time')}:{events['type']}"
    )
    return events, hashlib.sha256(key.encode()).hexdigest()


def _apply(kind: str, identity: UserIdentity) -> None:
    if kind in EMAIL_EVENTS:
        identity.email_disabled = EMAIL_EVENTS[kind]
        return
    if kind in ACCOUNT_DELETE and identities.only_way_in(identity):
        user_id = identity.user_id
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        account_deletion_requested.send(app, user_id=user_id)
        audit.record("apple_account_deleted", user_id=user_id)
        return
    audit.record("apple_consent_revoked", user_id=identity.user_id, details={"event": kind})
    apple_duties.forget_identity(identity, "apple_consent_revoked")


def handle(payload: str) -> dict[str, str]:
    """Verify and apply one notification; 200 answers whether new, repeated or ignored."""
    events, event_key = _event(payload)
    kind = events["type"]
    db.session.add(ProviderEvent(event_key=event_key, provider="apple", event_type=kind[:32]))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return {"status": "duplicate"}
    identity = identities.find("apple", events["sub"], lock=True)
    status = "ignored"
    if kind in KNOWN and identity is not None:
        _apply(kind, identity)
        status = "handled"
    try:
        outbox.commit()
    except IntegrityError:  # the same event, handled concurrently
        db.session.rollback()
        return {"status": "duplicate"}
    log.info("apple_notification", event_type=kind, status=status)
    return {"status": status}
