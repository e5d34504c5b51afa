"""Linked identities: the linking policy, list / link / unlink, the last way in."""

from __future__ import annotations

from sqlalchemy import select

from irisvue.extensions import db
from irisvue.models import Session, User, UserIdentity
from tests.support.idp import IDENTITIES, fresh_proof, sign_in_with
from tests.support.users import PASSWORD, bearer

LOGIN = "/api/v1/auth/login"


def _signed_in(client, idp, provider, sub, **claims):
    response = sign_in_with(client, idp, provider, sub, **claims)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body, bearer(body["access_token"])


def test_verified_provider_email_links_to_the_verified_account(app, client, idp, register):
    owner = register(client, "ada@example.com")
    with app.app_context():
        db.session.get(User, owner["user"]["id"]).is_verified = True
        db.session.commit()
    body, headers = _signed_in(client, idp, "google", "g-ada", email="ada@example.com")
    assert body["created"] is False
    assert body["user"]["id"] == owner["user"]["id"]
    # The password still works, and the old session lives: the owner was verified.
    assert (
        client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD}).status_code
        == 200
    )
    assert client.get("/api/v1/auth/me", headers=bearer(owner["access_token"])).status_code == 200
    items = client.get(IDENTITIES, headers=headers).get_json()["items"]
    assert [(i["provider"], i["email"]) for i in items] == [("google", "ada@example.com")]
    assert set(items[0]) == {
        "id",
        "provider",
        "email",
        "is_private_email",
        "created_at",
        "last_sign_in_at",
    }


def test_pre_account_takeover_an_unverified_squatter_loses_every_way_in(app, client, idp, register):
    squatter = register(client, "victim@example.com")  # never verified
    squatter_headers = bearer(squatter["access_token"])
    # The squatter even linked an identity of their own.
    proof = fresh_proof(client, idp, "google", "g-squatter", email="squatter@example.com")
    assert client.post(IDENTITIES, json=proof, headers=squatter_headers).status_code == 201

    body, headers = _signed_in(client, idp, "apple", "apple-victim", email="victim@example.com")
    assert body["user"]["id"] == squatter["user"]["id"]
    assert body["user"]["is_verified"] is True
    # The squatter's password, sessions and identities are gone.
    login = client.post(LOGIN, json={"email": "victim@example.com", "password": PASSWORD})
    assert login.status_code == 401
    assert client.get("/api/v1/auth/me", headers=squatter_headers).status_code == 401
    items = client.get(IDENTITIES, headers=headers).get_json()["items"]
    assert [i["provider"] for i in items] == ["apple"]
    squatter_again = sign_in_with(client, idp, "google", "g-squatter", email="squatter@example.com")
    assert squatter_again.get_json()["user"]["id"] != body["user"]["id"]
    with app.app_context():
        user = db.session.get(User, body["user"]["id"])
        assert user.hashed_password is None


def test_link_another_identity_then_sign_in_with_either(app, client, idp):
    body, headers = _signed_in(client, idp, "apple", "a-linker")
    proof = fresh_proof(client, idp, "google", "g-linker", email="other@example.com")
    linked = client.post(IDENTITIES, json=proof, headers=headers)
    assert linked.status_code == 201, linked.get_json()
    assert linked.get_json()["provider"] == "google"
    via_google = sign_in_with(client, idp, "google", "g-linker", email="other@example.com")
    assert via_google.get_json()["user"]["id"] == body["user"]["id"]
    assert via_google.get_json()["created"] is False
    assert len(client.get(IDENTITIES, headers=headers).get_json()["items"]) == 2


def test_an_identity_of_another_account_is_taken(app, client, idp):
    _signed_in(client, idp, "google", "g-owner")
    _, headers = _signed_in(client, idp, "apple", "a-other")
    proof = fresh_proof(client, idp, "google", "g-owner")
    response = client.post(IDENTITIES, json=proof, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["code"] == "identity_taken"


def test_unlinking_the_last_way_in_is_refused(app, client, idp):
    _, headers = _signed_in(client, idp, "apple", "a-only")
    identity = client.get(IDENTITIES, headers=headers).get_json()["items"][0]
    proof = fresh_proof(client, idp, "apple", "a-only")
    response = client.delete(f"{IDENTITIES}/{identity['id']}", json=proof, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["code"] == "last_sign_in_method"
    assert len(client.get(IDENTITIES, headers=headers).get_json()["items"]) == 1


def test_unlink_with_another_way_in_revokes_the_sessions_it_started(app, client, idp):
    _, headers = _signed_in(client, idp, "apple", "a-keep")
    proof = fresh_proof(client, idp, "google", "g-drop")
    google = client.post(IDENTITIES, json=proof, headers=headers).get_json()
    google_session = bearer(
        sign_in_with(client, idp, "google", "g-drop").get_json()["access_token"]
    )
    # Re-authenticated with the Apple identity (the one staying).
    proof = fresh_proof(client, idp, "apple", "a-keep")
    response = client.delete(f"{IDENTITIES}/{google['id']}", json=proof, headers=headers)
    assert response.status_code == 204, response.get_json()
    assert client.get("/api/v1/auth/me", headers=google_session).status_code == 401
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    with app.app_context():
        assert db.session.scalars(select(UserIdentity.provider)).all() == ["apple"]
        assert db.session.scalar(select(Session).where(Session.identity_id.is_(None))) is not None


def test_unlink_needs_re_authentication(app, client, idp):
    _, headers = _signed_in(client, idp, "apple", "a-r")
    google = client.post(
        IDENTITIES, json=fresh_proof(client, idp, "google", "g-r"), headers=headers
    ).get_json()
    url = f"{IDENTITIES}/{google['id']}"
    assert client.delete(url, json={}, headers=headers).status_code == 422
    wrong = client.delete(url, json={"password": "not-the-password"}, headers=headers)
    assert wrong.status_code == 403 and wrong.get_json()["code"] == "invalid_credentials"
    # An identity of someone else is no proof.
    _signed_in(client, idp, "google", "g-stranger")
    stranger = fresh_proof(client, idp, "google", "g-stranger")
    refused = client.delete(url, json=stranger, headers=headers)
    assert refused.status_code == 403 and refused.get_json()["code"] == "invalid_credentials"
    # Another user's identity id is a 404.
    other_headers = _signed_in(client, idp, "apple", "a-x")[1]
    proof = fresh_proof(client, idp, "apple", "a-x")
    assert client.delete(url, json=proof, headers=other_headers).status_code == 404
    assert len(client.get(IDENTITIES, headers=headers).get_json()["items"]) == 2
