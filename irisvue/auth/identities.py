"""Sign-in with an Apple or Google ID token, and the identities linked to an account.

The linking policy (SPEC §3 "Accounts and identities"): a known identity signs
its user in. Otherwise, when the provider vouches for the email (Apple: always;
Google: `email_verified`), the identity joins the account with that email —
and when that account never verified its own address, its password, sessions
and other identities are removed first, so a pre-registration by someone else
does not become a way into the real owner's account. Otherwise a new account
is created (verified when the provider says so).

Provider calls (JWKS, Apple's token endpoint) happen with no transaction open.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from irisvue.auth import apple_duties, audit, nonces, sessions
from irisvue.auth.providers import provider_config
from irisvue.auth.providers.id_tokens import IdClaims, TokenRejectedError, verify_id_token
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.jobs import outbox
from irisvue.models import User, UserIdentity
from irisvue.models.base import utcnow

log = structlog.get_logger(__name__)


def verified_claims(provider: str, id_token: str, nonce: str) -> IdClaims:
    """The token checked against the provider and the nonce (not consumed yet)."""
    config = provider_config(provider)
    db.session.rollback()  # no connection held while the keys may be fetched
    try:
        claims = verify_id_token(config, id_token)
    except TokenRejectedError as exc:
        log.info("id_token_rejected", provider=provider, reason=exc.reason)
        raise nonces.invalid_id_token() from None
    nonces.check_claim(nonce, claims.nonce)
    return claims


def find(provider: str, subject: str, *, lock: bool = False) -> UserIdentity | None:
    """The identity `(provider, subject)`, if any; `lock` takes it FOR UPDATE."""
    stmt = select(UserIdentity).where(
        UserIdentity.provider == provider, UserIdentity.subject == subject
    )
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


def only_way_in(identity: UserIdentity) -> bool:
    """True when the account has no password and no other identity: this is its last way in."""
    user = db.session.get(User, identity.user_id)
    others = db.session.scalar(
        select(func.count())
        .select_from(UserIdentity)
        .where(UserIdentity.user_id == identity.user_id, UserIdentity.id != identity.id)
    )
    return user is not None and user.hashed_password is None and not others


def _refresh(identity: UserIdentity, claims: IdClaims) -> None:
    if claims.email is not None:
        identity.email = claims.email
        identity.is_private_email = claims.is_private_email
    identity.client_id = claims.audience
    identity.last_sign_in_at = utcnow()


def _strip_unverified(user: User) -> None:
    """The pre-account-takeover rule: an unverified account loses every way in."""
    user.hashed_password = None
    sessions.revoke_all(user.id, "identity_took_over")
    db.session.execute(delete(UserIdentity).where(UserIdentity.user_id == user.id))
    audit.record("unverified_account_claimed", user_id=user.id)


def _account_for(claims: IdClaims) -> tuple[User, bool]:
    if claims.email is None:
        db.session.rollback()
        raise nonces.invalid_id_token("The token carries no email address.")
    user = db.session.scalar(select(User).where(User.email == claims.email).with_for_update())
    if user is not None:
        if not claims.email_verified:
            db.session.rollback()
            raise APIError(
                409,
                "email_taken",
                "An account with this email exists; sign in to it, then link this identity.",
            )
        if not user.is_verified:
            _strip_unverified(user)
            user.is_verified = True
        return user, False
    user = User(
        email=claims.email,
        hashed_password=None,
        is_verified=claims.email_verified,
        auth_provider=claims.provider,
        auth_provider_id=claims.subject,
    )
    db.session.add(user)
    db.session.flush()
    if not claims.email_verified:
        outbox.submit("email.verify_email", user_id=user.id)
    return user, True


def _sign_in_once(claims: IdClaims, nonce: str) -> tuple[dict[str, Any], UserIdentity]:
    nonces.consume(nonce)
    identity = find(claims.provider, claims.subject, lock=True)
    created = False
    if identity is not None:
        user = db.session.get(User, identity.user_id)
        assert user is not None  # the identity cascades away with its user
    else:
        user, created = _account_for(claims)
        identity = UserIdentity(user_id=user.id, provider=claims.provider, subject=claims.subject)
        db.session.add(identity)
    if not user.is_active:
        db.session.rollback()
        raise APIError(403, "account_disabled", "This account is disabled.")
    _refresh(identity, claims)
    user.last_seen_at = utcnow()
    db.session.flush()
    session, pair = sessions.open_session(user, identity_id=identity.id)
    audit.record(
        "identity_sign_in",
        user_id=user.id,
        session_id=session.id,
        details={"provider": claims.provider, "created": created},
    )
    outbox.commit()
    return {"user": user, **pair.as_dict(), "created": created}, identity


def sign_in(
    provider: str, id_token: str, nonce: str, authorization_code: str | None = None
) -> dict[str, Any]:
    """POST /id-token: our token pair for a verified provider identity."""
    claims = verified_claims(provider, id_token, nonce)
    for attempt in (1, 2):
        try:
            result, identity = _sign_in_once(claims, nonce)
            break
        except IntegrityError:  # a concurrent first sign-in of the same person won
            db.session.rollback()
            if attempt == 2:
                raise APIError(409, "conflict", "A concurrent sign-in interfered; retry.") from None
    if provider == "apple" and authorization_code:
        apple_duties.keep_refresh_token(identity.id, claims, authorization_code)
    return result


def list_identities(user_id: uuid.UUID) -> list[UserIdentity]:
    return list(
        db.session.scalars(
            select(UserIdentity)
            .where(UserIdentity.user_id == user_id)
            .order_by(UserIdentity.created_at, UserIdentity.id)
        )
    )


def link(
    user_id: uuid.UUID,
    provider: str,
    id_token: str,
    nonce: str,
    authorization_code: str | None = None,
) -> UserIdentity:
    """POST /identities: another way into the signed-in account."""
    claims = verified_claims(provider, id_token, nonce)
    nonces.consume(nonce)
    identity = find(claims.provider, claims.subject, lock=True)
    if identity is not None and identity.user_id != user_id:
        db.session.rollback()
        raise APIError(409, "identity_taken", "This identity belongs to another account.")
    if identity is None:
        identity = UserIdentity(user_id=user_id, provider=claims.provider, subject=claims.subject)
        db.session.add(identity)
    _refresh(identity, claims)
    audit.record("identity_linked", user_id=user_id, details={"provider": provider})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise APIError(409, "identity_taken", "This identity belongs to another account.") from None
    if provider == "apple" and authorization_code:
        apple_duties.keep_refresh_token(identity.id, claims, authorization_code)
    return identity


def unlink(user_id: uuid.UUID, identity_id: uuid.UUID, keep: uuid.UUID | None) -> None:
    """DELETE /identities/{id} (after re-authentication): never the last way in.

    The sessions the identity started are revoked (the calling one excepted).
    """
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    identity = db.session.scalar(
        select(UserIdentity)
        .where(UserIdentity.id == identity_id, UserIdentity.user_id == user_id)
        .with_for_update()
    )
    if user is None or identity is None:
        db.session.rollback()
        raise APIError(404, "identity_not_found", "No such identity.")
    if only_way_in(identity):  # reads the user locked above (the session's identity map)
        db.session.rollback()
        raise APIError(
            409,
            "last_sign_in_method",
            "This is the account's only way to sign in; set a password or link another first.",
        )
    apple_token = apple_duties.token_to_revoke(identity)
    provider = identity.provider
    apple_duties.forget_identity(identity, "identity_unlinked", keep=keep)
    audit.record("identity_unlinked", user_id=user_id, details={"provider": provider})
    db.session.commit()
    apple_duties.revoke_after_unlink(*apple_token)
