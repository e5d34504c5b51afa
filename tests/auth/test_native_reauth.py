"""Re-authentication with a fresh ID token: password-less accounts erase themselves,
set a password (then sign in with either), change their email."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from irisvue.extensions import db
from irisvue.models import ErasureTombstone, PrivacyRequest, User
from tests.support.idp import fresh_proof, sign_in_with
from tests.support.users import bearer

LOGIN = "/api/v1/auth/login"
PASSWORD_URL = "/api/v1/auth/password"
ERASURE = "/api/v1/privacy/erasure"
NEW_PASSWORD = "copper-meadow-lantern-77"


def _signed_in(client, idp, provider, sub, **claims):
    response = sign_in_with(client, idp, provider, sub, **claims)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body, bearer(body["access_token"])


def test_password_less_account_sets_a_password_then_signs_in_either_way(app, client, idp):
    body, headers = _signed_in(client, idp, "apple", "a-setpw", email="setpw@example.com")
    # Without re-authentication: refused.
    bare = client.post(PASSWORD_URL, json={"new_password": NEW_PASSWORD}, headers=headers)
    assert bare.status_code == 422
    # A wrong "current password" (there is none) is refused too.
    wrong = client.post(
        PASSWORD_URL,
        json={"new_password": NEW_PASSWORD, "current_password": "anything-at-all"},
        headers=headers,
    )
    assert wrong.status_code == 403
    proof = fresh_proof(client, idp, "apple", "a-setpw", email="setpw@example.com")
    response = client.post(
        PASSWORD_URL, json={"new_password": NEW_PASSWORD, **proof}, headers=headers
    )
    assert response.status_code == 204, response.get_json()
    login = client.post(LOGIN, json={"email": "setpw@example.com", "password": NEW_PASSWORD})
    assert login.status_code == 200
    assert login.get_json()["access_token"]
    again = sign_in_with(client, idp, "apple", "a-setpw", email="setpw@example.com")
    assert again.get_json()["user"]["id"] == body["user"]["id"]
    # The same proof cannot be used twice.
    replay = client.post(
        PASSWORD_URL, json={"new_password": "another-fine-password-9", **proof}, headers=headers
    )
    assert replay.status_code == 401
    assert replay.get_json()["code"] == "invalid_id_token"


def test_a_stale_id_token_is_no_re_authentication(app, client, idp):
    _, headers = _signed_in(client, idp, "google", "g-stale")
    proof = fresh_proof(client, idp, "google", "g-stale", iat=time.time() - 301)
    response = client.post(
        PASSWORD_URL, json={"new_password": NEW_PASSWORD, **proof}, headers=headers
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "reauthentication_stale"


def test_password_and_id_token_together_is_422(app, client, idp):
    _, headers = _signed_in(client, idp, "google", "g-both")
    proof = fresh_proof(client, idp, "google", "g-both")
    response = client.post(
        PASSWORD_URL,
        json={"new_password": NEW_PASSWORD, "current_password": "x" * 10, **proof},
        headers=headers,
    )
    assert response.status_code == 422


def test_email_change_re_authenticated_by_id_token(app, client, idp):
    _, headers = _signed_in(client, idp, "google", "g-mail")
    proof = fresh_proof(client, idp, "google", "g-mail")
    response = client.patch(
        "/api/v1/auth/me", json={"email": "moved@example.com", **proof}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["email"] == "moved@example.com"
    assert response.get_json()["is_verified"] is False


def test_password_less_account_erases_itself_with_a_fresh_apple_token(
    app, client, idp, run_jobs, consent_documents
):
    body, headers = _signed_in(client, idp, "apple", "a-erase")
    wrong = client.post(ERASURE, json={"password": "whatever-it-is"}, headers=headers)
    assert wrong.status_code == 401
    proof = fresh_proof(client, idp, "apple", "a-erase")
    response = client.post(ERASURE, json=proof, headers=headers)
    assert response.status_code == 202, response.get_json()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert run_jobs() >= 1
    receipt = client.get(response.get_json()["status_url"]).get_json()
    assert receipt["status"] == "completed"
    # An Apple identity without a stored refresh token could not be revoked: said so.
    assert receipt["apple_revoked"] is False
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
        assert db.session.scalar(select(func.count()).select_from(ErasureTombstone)) == 1
        assert db.session.scalar(select(PrivacyRequest.status)) == "completed"
    # The same person can come back as a new account.
    back = sign_in_with(client, idp, "apple", "a-erase")
    assert back.status_code == 200 and back.get_json()["created"] is True
    assert back.get_json()["user"]["id"] != body["user"]["id"]
