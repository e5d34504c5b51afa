"""Apple's duties: the code exchange, revocation at erasure, server-to-server notifications."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from irisvue.crypto.user_keys import load_data_key, unseal
from irisvue.extensions import db
from irisvue.models import ProviderEvent, Session, User, UserIdentity
from tests.support.idp import (
    APPLE_CLIENT_ID,
    APPLE_NOTIFICATIONS,
    IDENTITIES,
    SigningKey,
    fresh_proof,
    sign_in_with,
)
from tests.support.users import bearer

ERASURE = "/api/v1/privacy/erasure"


def _apple_user(client, idp, sub, **claims):
    code = idp.authorization_code(sub)
    response = sign_in_with(client, idp, "apple", sub, authorization_code=code, **claims)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body, bearer(body["access_token"])


def _count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_code_is_exchanged_once_and_the_refresh_token_stored_encrypted(app, client, idp):
    body, _ = _apple_user(client, idp, "a-code")
    assert sign_in_with(client, idp, "apple", "a-code").status_code == 200  # no code: no call
    assert len(idp.calls.token) == 1
    call = idp.calls.token[0]
    assert call["client_id"] == APPLE_CLIENT_ID and call["grant_type"] == "authorization_code"
    (refresh,) = idp.refresh_tokens
    with app.app_context():
        identity = db.session.scalars(select(UserIdentity)).one()
        stored = identity.apple_refresh_token
        # Sealed with the user's data key: it opens with that key and nothing else.
        data_key = load_data_key(uuid.UUID(body["user"]["id"]))
        opened = unseal(data_key, stored, f"apple-refresh-token:{identity.id}")
    assert stored and refresh.encode() not in stored  # ciphertext, not the token
    assert opened == refresh.encode()


def test_erasure_revokes_the_apple_token_through_the_worker(
    app, client, idp, run_jobs, consent_documents
):
    _, headers = _apple_user(client, idp, "a-revoke")
    proof = fresh_proof(client, idp, "apple", "a-revoke")
    accepted = client.post(ERASURE, json=proof, headers=headers)
    assert accepted.status_code == 202, accepted.get_json()
    assert run_jobs() >= 1
    receipt = client.get(accepted.get_json()["status_url"]).get_json()
    assert receipt["status"] == "completed"
    assert receipt["apple_revoked"] is True
    (refresh,) = idp.refresh_tokens
    assert idp.revoked == {refresh}
    assert idp.calls.revoke[0]["token_type_hint"] == "refresh_token"
    assert _count(app, User) == 0


def test_erasure_completes_when_apple_is_down_and_the_receipt_says_so(
    app, client, idp, run_jobs, consent_documents
):
    _, headers = _apple_user(client, idp, "a-down")
    idp.revoke_down = True
    proof = fresh_proof(client, idp, "apple", "a-down")
    accepted = client.post(ERASURE, json=proof, headers=headers)
    assert run_jobs() >= 1
    receipt = client.get(accepted.get_json()["status_url"]).get_json()
    assert receipt["status"] == "completed"
    assert receipt["apple_revoked"] is False
    assert len(idp.calls.revoke) == 3  # first try + two retries (backoff set to 0 here)
    assert _count(app, User) == 0 and _count(app, UserIdentity) == 0


def test_a_failed_code_exchange_does_not_fail_the_sign_in(app, client, idp):
    idp.token_down = True
    body, _ = _apple_user(client, idp, "a-nocode")
    assert body["created"] is True
    assert _count(app, UserIdentity, UserIdentity.apple_refresh_token.is_not(None)) == 0


def _notify(client, payload):
    return client.post(APPLE_NOTIFICATIONS, json={"payload": payload})


def test_consent_revoked_unlinks_and_revokes_the_sessions_it_started(app, client, idp, register):
    _, apple_headers = _apple_user(client, idp, "a-consent", email="both@example.com")
    # The account also has a password (so Apple is not the only way in).
    proof = fresh_proof(client, idp, "apple", "a-consent", email="both@example.com")
    assert (
        client.post(
            "/api/v1/auth/password",
            json={"new_password": "river-stone-orchard-5", **proof},
            headers=apple_headers,
        ).status_code
        == 204
    )
    password_login = client.post(
        "/api/v1/auth/login",
        json={"email": "both@example.com", "password": "river-stone-orchard-5"},
    )
    password_headers = bearer(password_login.get_json()["access_token"])
    response = _notify(client, idp.apple_notification("consent-revoked", "a-consent"))
    assert response.status_code == 200 and response.get_json()["status"] == "handled"
    assert client.get("/api/v1/auth/me", headers=apple_headers).status_code == 401
    assert client.get("/api/v1/auth/me", headers=password_headers).status_code == 200
    assert client.get(IDENTITIES, headers=password_headers).get_json()["items"] == []


def test_account_delete_erases_an_apple_only_account(app, client, idp, run_jobs, consent_documents):
    _, headers = _apple_user(client, idp, "a-gone")
    response = _notify(client, idp.apple_notification("account-delete", "a-gone"))
    assert response.status_code == 200 and response.get_json()["status"] == "handled"
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert run_jobs() >= 1
    assert _count(app, User) == 0
    from irisvue.models import ErasureTombstone, PrivacyRequest

    assert _count(app, ErasureTombstone) == 1
    assert _count(app, PrivacyRequest, PrivacyRequest.status == "completed") == 1


def test_account_deleted_with_another_way_in_only_unlinks(app, client, idp):
    _, headers = _apple_user(client, idp, "a-half")
    proof = fresh_proof(client, idp, "google", "g-half")
    assert client.post(IDENTITIES, json=proof, headers=headers).status_code == 201
    response = _notify(client, idp.apple_notification("account-deleted", "a-half"))
    assert response.status_code == 200
    assert _count(app, User) == 1
    assert [i["provider"] for i in _identities_of_google(client, idp, "g-half")] == ["google"]
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def _identities_of_google(client, idp, sub):
    body = sign_in_with(client, idp, "google", sub).get_json()
    return client.get(IDENTITIES, headers=bearer(body["access_token"])).get_json()["items"]


def test_email_disabled_pauses_mail_to_the_relay_address_and_enabled_resumes(
    app, client, idp, mailbox, run_jobs
):
    relay = "q1w2e3@privaterelay.appleid.com"
    # Google says the address is unverified → a verification email is queued.
    body = sign_in_with(
        client, idp, "google", "g-relay", email=relay, email_verified=False
    ).get_json()
    proof = fresh_proof(client, idp, "apple", "a-relay", email=relay, is_private_email="true")
    headers = bearer(body["access_token"])
    # link the Apple identity whose relay address it is
    assert client.post(IDENTITIES, json=proof, headers=headers).status_code == 201
    assert (
        _notify(
            client, idp.apple_notification("email-disabled", "a-relay", email=relay)
        ).status_code
        == 200
    )
    run_jobs()
    assert mailbox.to(relay) == []
    assert (
        _notify(client, idp.apple_notification("email-enabled", "a-relay", email=relay)).status_code
        == 200
    )
    assert client.post("/api/v1/auth/verify-email/request", headers=headers).status_code == 202
    run_jobs()
    assert len(mailbox.to(relay)) == 1


def test_each_notification_is_handled_once(app, client, idp, register):
    _apple_user(client, idp, "a-dup")
    payload = idp.apple_notification("email-disabled", "a-dup", jti="event-1")
    assert _notify(client, payload).get_json()["status"] == "handled"
    assert _notify(client, payload).get_json()["status"] == "duplicate"
    # Without a jti: deduplicated on sub + event_time + type.
    bare = idp.apple_notification("email-enabled", "a-dup", jti="", event_time=1234)
    bare_again = idp.apple_notification("email-enabled", "a-dup", jti="", event_time=1234)
    assert _notify(client, bare).get_json()["status"] == "handled"
    assert _notify(client, bare_again).get_json()["status"] == "duplicate"
    assert _count(app, ProviderEvent) == 2


def test_invalid_notifications_are_400_and_change_nothing(app, client, idp):
    _apple_user(client, idp, "a-safe")
    forged = idp.apple_notification(
        "consent-revoked", "a-safe", key=SigningKey.generate("RS256", "apple-rsa-1")
    )
    other_app = idp.apple_notification("consent-revoked", "a-safe", aud="com.someone.else")
    for payload in (forged, other_app, "not.a.jwt", idp.id_token("google", "g")):
        response = _notify(client, payload)
        assert response.status_code == 400, response.get_json()
        assert response.get_json()["code"] == "invalid_notification"
    assert _notify(client, "").status_code == 422
    assert client.post(APPLE_NOTIFICATIONS, json={}).status_code == 422
    assert _count(app, UserIdentity) == 1 and _count(app, ProviderEvent) == 0
    assert _count(app, Session, Session.revoked_at.is_not(None)) == 0


def test_unknown_subject_is_acknowledged(app, client, idp):
    response = _notify(client, idp.apple_notification("consent-revoked", str(uuid.uuid4())))
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"


def test_unlinking_an_apple_identity_revokes_its_token(app, client, idp):
    _, headers = _apple_user(client, idp, "a-unlink")
    proof = fresh_proof(client, idp, "google", "g-unlink")
    assert client.post(IDENTITIES, json=proof, headers=headers).status_code == 201
    items = client.get(IDENTITIES, headers=headers).get_json()["items"]
    apple = next(i for i in items if i["provider"] == "apple")
    proof = fresh_proof(client, idp, "google", "g-unlink")
    response = client.delete(f"{IDENTITIES}/{apple['id']}", json=proof, headers=headers)
    assert response.status_code == 204, response.get_json()
    assert idp.revoked == set(idp.refresh_tokens)


def test_the_retention_sweep_forgets_old_events_and_expired_nonces(app, client, idp):
    from datetime import timedelta

    from sqlalchemy import update

    from irisvue.models import AuthNonce
    from irisvue.models.base import utcnow
    from irisvue.privacy.retention import sweep

    _apple_user(client, idp, "a-sweep")
    _notify(client, idp.apple_notification("email-disabled", "a-sweep"))
    _notify(client, idp.apple_notification("email-enabled", "a-sweep"))
    client.post("/api/v1/auth/nonce")  # one live nonce stays
    with app.app_context():
        old = utcnow() - timedelta(days=91)
        first = db.session.scalars(select(ProviderEvent.id).limit(1)).one()
        db.session.execute(
            update(ProviderEvent).where(ProviderEvent.id == first).values(received_at=old)
        )
        db.session.execute(
            update(AuthNonce)
            .where(AuthNonce.used_at.is_not(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        counts = sweep()
    assert counts["provider_events"] == 1 and counts["auth_nonces"] == 1
    assert _count(app, ProviderEvent) == 1
    assert _count(app, AuthNonce) == 1
