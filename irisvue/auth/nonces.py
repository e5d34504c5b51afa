"""Single-use nonces for ID-token sign-in (the database is the only truth).

POST /nonce hands out a random nonce (256 bits) and keeps only its SHA-256 in
hex, which is exactly what the app passes to the provider's SDK and so what
comes back as the token's `nonce` claim. Consuming is one conditional UPDATE
(unused and unexpired → used), so of two requests racing with the same nonce
exactly one wins, on any number of workers. Unlike Supabase Auth, which only
compares the claim, a token and its nonce can never be replayed here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, update

from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import AuthNonce, ProviderEvent
from irisvue.models.base import utcnow

NONCE_LIFETIME = timedelta(minutes=10)
# Apple may repeat a notification; remembering its key this long is plenty.
EVENT_MEMORY = timedelta(days=90)


def sha256_hex(text: str) -> str:
    """How single-use secrets are stored: nonces here, emailed tokens too."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def invalid_id_token(detail: str = "The ID token is not valid.") -> APIError:
    return APIError(401, "invalid_id_token", detail)


def issue_nonce() -> dict[str, object]:
    """A fresh nonce, stored hashed (commits). Expired ones are refused by
    `consume` and deleted by the retention sweep (`purge_spent`), not here: this
    endpoint is public."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(AuthNonce(nonce_hash=sha256_hex(raw), expires_at=now + NONCE_LIFETIME))
    db.session.commit()
    return {"nonce": raw, "expires_in": int(NONCE_LIFETIME.total_seconds())}


def check_claim(raw: str, claim: str | None) -> None:
    """The token's `nonce` claim must be sha256_hex of the nonce the app sent us."""
    if claim is None or not hmac.compare_digest(claim.encode(), sha256_hex(raw).encode()):
        raise invalid_id_token("The token's nonce does not match.")


def consume(raw: str) -> None:
    """Spend the nonce in the current transaction; 401 when unknown, expired or spent."""
    now = utcnow()
    spent = db.session.execute(
        update(AuthNonce)
        .where(
            AuthNonce.nonce_hash == sha256_hex(raw),
            AuthNonce.used_at.is_(None),
            AuthNonce.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if spent != 1:
        db.session.rollback()
        raise invalid_id_token("The nonce is unknown, expired or already used.")


def purge_spent() -> dict[str, int]:
    """Expired nonces and provider events older than EVENT_MEMORY (retention sweep)."""
    now = utcnow()
    nonces = db.session.execute(delete(AuthNonce).where(AuthNonce.expires_at <= now)).rowcount
    events = db.session.execute(
        delete(ProviderEvent).where(ProviderEvent.received_at <= now - EVENT_MEMORY)
    ).rowcount
    db.session.commit()
    return {"auth_nonces": nonces or 0, "provider_events": events or 0}
