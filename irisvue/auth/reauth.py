"""Re-authentication before a dangerous action: the one rule, for every feature.

Erasure, setting or changing a password, changing the email and unlinking an
identity need proof that the person holding the access token is the account's
owner right now: either the account's `password`, or `{provider, id_token,
nonce}` of an identity linked to the account, issued by the provider within
the last FRESH_SECONDS (and its nonce spent here, like at sign-in). An account
created through Apple or Google has no password and uses the second form.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from irisvue.auth import identities, lockout, nonces
from irisvue.auth.passwords import get_passwords
from irisvue.errors import APIError
from irisvue.extensions import db
from irisvue.models import User, UserIdentity

FRESH_SECONDS = 300


def check_password(
    user: User,
    password: str | None,
    *,
    status: int = 403,
    detail: str = "The password is wrong.",
) -> str | None:
    """Verify `user`'s password with no transaction open; returns the hash checked.

    A wrong password is `status` `invalid_credentials` with `detail`. Every check
    draws on the account's failure budget (`lockout`). None: the caller proved
    itself another way (an ID token), nothing to verify.
    """
    hashed, email = user.hashed_password, user.email
    db.session.rollback()  # no connection held while Argon2 runs
    if password is None:
        return hashed
    if not lockout.checked(email, lambda: get_passwords().verify(hashed, password)):
        raise APIError(status, "invalid_credentials", detail)
    return hashed or ""


def reauthenticate(
    user: User,
    *,
    password: str | None = None,
    provider: str | None = None,
    id_token: str | None = None,
    nonce: str | None = None,
    status: int = 403,
) -> str:
    """Raise unless the caller proved to be `user` now; returns "password" or the provider.

    A wrong password is `status` `invalid_credentials` (the caller's convention);
    a bad ID token 401 `invalid_id_token`; an old one `status` `reauthentication_stale`.
    """
    user_id = user.id
    if password is not None:
        check_password(user, password, status=status)
        return "password"
    if provider is None or id_token is None or nonce is None:
        raise APIError(
            422,
            "reauthentication_required",
            "Send `password`, or `provider`, `id_token` and `nonce` of a linked identity.",
        )
    claims = identities.verified_claims(provider, id_token, nonce)
    if claims.issued_at < time.time() - FRESH_SECONDS:
        raise APIError(
            status,
            "reauthentication_stale",
            "The ID token is older than 5 minutes; sign in with the provider again.",
        )
    linked = db.session.scalar(
        select(UserIdentity.id).where(
            UserIdentity.user_id == user_id,
            UserIdentity.provider == claims.provider,
            UserIdentity.subject == claims.subject,
        )
    )
    if linked is None:
        db.session.rollback()
        raise APIError(status, "invalid_credentials", "This identity is not linked to the account.")
    nonces.consume(nonce)
    db.session.commit()
    return claims.provider
