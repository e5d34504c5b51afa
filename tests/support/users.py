"""Users for tests: the one authenticated-user factory (`sign_in`) and what it is made of.

`sign_in` makes a user and returns bearer headers for it: by default a row
inserted directly and a real session opened for it (no Argon2 cost); with a
`password`, registered through the API like a client would (from an address of
its own, so per-IP limits never interfere). Either way it is verified and,
unless `consent=False`, holds a live biometric-capture consent. Tests reach it
through the `signed_in` fixture (tests/conftest.py).
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask
from flask.testing import FlaskClient

from tests.support.consent import grant_biometric_consent
from tests.support.images import jpeg_with_gps, plain_png
from tests.support.uploads import upload

if TYPE_CHECKING:
    from irisvue.models import User

PASSWORD = "violet-lantern-harbour-42"

# Argon2 settings that make a hash take microseconds (the app reads them from the
# environment): for tests about anything but hashing cost.
CHEAP_ARGON2 = {
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST": "1024",
    "ARGON2_PARALLELISM": "1",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_from(message) -> str:
    """The single-use token of a delivered verification or reset email."""
    body = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"code in the app: ([A-Za-z0-9_-]{20,})", body)
    assert found, body
    return found.group(1)


_addresses = itertools.count(10)


def fresh_ip() -> dict[str, str]:
    """A loopback address of its own, so per-IP rate limits never mask an answer."""
    n = next(_addresses)
    return {"REMOTE_ADDR": f"127.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"}


def register(client: FlaskClient, email: str | None = None, password: str | None = None) -> dict:
    """Registers an account through the API from a fresh address; returns the 201 body."""
    response = client.post(
        "/api/v1/auth/register",
        json={
            "email": email or f"user-{uuid.uuid4().hex[:8]}@example.com",
            "password": password or PASSWORD,
        },
        environ_overrides=fresh_ip(),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_user(app: Flask, email: str | None = None, *, is_verified: bool = True) -> User:
    """A user row inserted directly (detached from the session)."""
    from irisvue.extensions import db
    from irisvue.models import User

    with app.app_context():
        user = User(
            email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
            is_verified=is_verified,
        )
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def session_headers(app: Flask, user: User) -> dict[str, str]:
    """Bearer headers of a real session opened for `user` (tokens carry its id)."""
    from irisvue.auth.sessions import open_session
    from irisvue.extensions import db
    from irisvue.models import User

    with app.test_request_context(headers={"User-Agent": "pytest"}):
        _, pair = open_session(db.session.get(User, user.id))
        db.session.commit()
    return bearer(pair.access_token)


@dataclass
class SignedIn:
    """A user and its bearer headers; unpacks as `user, headers = ...`.

    `registration` is the API's 201 body when the user was registered with a password.
    """

    user: User
    headers: dict[str, str]
    registration: dict | None = None

    def __iter__(self):
        return iter((self.user, self.headers))


def sign_in(
    app: Flask,
    client: FlaskClient,
    *,
    email: str | None = None,
    password: str | None = None,
    verified: bool = True,
    consent: bool = True,
) -> SignedIn:
    """The authenticated-user factory; `consent` needs the consent texts published."""
    from irisvue.extensions import db
    from irisvue.models import User

    registration = None
    if password is None:
        user = create_user(app, email, is_verified=verified)
        headers = session_headers(app, user)
    else:
        registration = register(client, email, password)
        headers = bearer(registration["access_token"])
        with app.app_context():
            user = db.session.get(User, uuid.UUID(registration["user"]["id"]))
            user.is_verified = verified
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
    if consent:
        grant_biometric_consent(client, headers)
    return SignedIn(user, headers, registration)


def account_with_data(app: Flask, client: FlaskClient, email: str | None = None):
    """A registered, verified account with a consent and two captures: (201 body, headers)."""
    account = sign_in(app, client, email=email, password=PASSWORD)
    for photo in (jpeg_with_gps(), plain_png()):
        assert upload(client, account.headers, photo).status_code == 201
    return account.registration, account.headers
