"""What Sign in with Apple obliges us to do with a user's Apple tokens.

* At sign-in with an `authorization_code`: exchange it (once) at Apple's token
  endpoint and keep the refresh token, encrypted with the user's data key, so
  deleting that key (erasure) shreds it with everything else of theirs.
* At erasure: revoke it at Apple's revoke endpoint, retried with backoff; the
  outcome is reported, never allowed to stop the deletion of our data.
"""

from __future__ import annotations

import time
import uuid

import structlog
from flask import current_app
from sqlalchemy import select

from irisvue.auth import sessions
from irisvue.auth.providers import apple
from irisvue.auth.providers.id_tokens import IdClaims
from irisvue.crypto import CryptoError, DataKey
from irisvue.crypto.user_keys import get_or_create_data_key, load_data_key, seal, unseal
from irisvue.extensions import db
from irisvue.models import Session, UserIdentity

log = structlog.get_logger(__name__)


def _associated_data(identity_id: uuid.UUID) -> str:
    return f"apple-refresh-token:{identity_id}"


def keep_refresh_token(identity_id: uuid.UUID, claims: IdClaims, code: str) -> bool:
    """Exchange the authorization code and store Apple's refresh token; False on failure
    (the sign-in stands: the app can send a new code at its next sign-in)."""
    db.session.rollback()
    if not apple.configured():
        log.warning("apple_code_not_exchanged", reason="apple_key_not_configured")
        return False
    try:
        refresh = apple.exchange_code(claims.audience, code, claims.subject)
    except apple.AppleError as exc:
        log.warning("apple_code_exchange_failed", reason=str(exc))
        return False
    identity = db.session.get(UserIdentity, identity_id)
    if identity is None:
        db.session.rollback()
        return False
    user_id = identity.user_id
    _, data_key = get_or_create_data_key(user_id)  # commits a new key on first use
    identity = db.session.get(UserIdentity, identity_id, with_for_update=True)
    if identity is None:
        db.session.rollback()
        return False
    identity.apple_refresh_token = seal(data_key, refresh.encode(), _associated_data(identity_id))
    identity.client_id = claims.audience
    db.session.commit()
    return True


def forget_identity(identity: UserIdentity, reason: str, *, keep: uuid.UUID | None = None) -> None:
    """Delete the identity and revoke the live sessions it started (but `keep`), in
    the caller's transaction."""
    stmt = select(Session).where(Session.identity_id == identity.id, Session.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(Session.id != keep)
    started = list(db.session.scalars(stmt.with_for_update()))
    sessions.revoke(started, reason)
    db.session.delete(identity)


def _plain(identity: UserIdentity, data_key: DataKey | None) -> tuple[str, str]:
    """(client id, refresh token) of an Apple identity; ("", "") when there is none."""
    if identity.apple_refresh_token is None or data_key is None or not identity.client_id:
        return "", ""
    try:
        token = unseal(data_key, identity.apple_refresh_token, _associated_data(identity.id))
    except CryptoError:
        return "", ""
    return identity.client_id, token.decode()


def token_to_revoke(identity: UserIdentity) -> tuple[str, str]:
    """Read before unlinking an Apple identity; `revoke_after_unlink` once committed."""
    if identity.provider != "apple" or identity.apple_refresh_token is None:
        return "", ""
    return _plain(identity, load_data_key(identity.user_id))


def revoke_after_unlink(client_id: str, token: str) -> None:
    """Best effort, once: the identity is gone from our side whatever Apple answers."""
    if client_id and apple.configured():
        try:
            apple.revoke(client_id, token)
        except apple.AppleError as exc:
            log.warning("apple_revoke_failed", reason=str(exc), on="unlink")


def _tokens_of(user_id: uuid.UUID) -> list[tuple[str, str]] | None:
    """(client id, refresh token) of every Apple identity; None when there is none."""
    identities = list(
        db.session.scalars(
            select(UserIdentity).where(
                UserIdentity.user_id == user_id, UserIdentity.provider == "apple"
            )
        )
    )
    if not identities:
        return None
    data_key = load_data_key(user_id)
    # ("", ""): nothing we can revoke, reported as not revoked.
    return [_plain(identity, data_key) for identity in identities]


def _revoke_with_retries(client_id: str, token: str) -> bool:
    if not client_id or not apple.configured():
        return False
    waits = list(current_app.config["APPLE_REVOKE_BACKOFF_SECONDS"])
    for attempt in range(len(waits) + 1):
        try:
            apple.revoke(client_id, token)
            return True
        except apple.AppleError as exc:
            log.warning("apple_revoke_failed", attempt=attempt + 1, reason=str(exc))
            if attempt < len(waits):
                time.sleep(waits[attempt])
    return False


def revoke_for_erasure(user_id: uuid.UUID) -> bool | None:
    """Revoke every Apple token of the user (before their data key is shredded).

    True: all revoked; False: at least one could not be; None: no Apple identity.
    """
    tokens = _tokens_of(user_id)
    db.session.rollback()  # no transaction open while Apple answers
    if tokens is None:
        return None
    results = [_revoke_with_retries(client_id, token) for client_id, token in tokens]
    return all(results)
