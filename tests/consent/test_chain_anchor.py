"""SPEC §9: the ledger's head is anchored outside the chain, hashes are keyed with a
server secret, TRUNCATE is refused, and the application's own database role cannot
switch on the erasure bypass (proved with SQL run as such a role)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from irisvue import create_app
from irisvue.consent.chain import GENESIS_HASH, compute_hash, head_mac
from irisvue.consent.keys import current_keys
from irisvue.consent.services import has_live_consent
from irisvue.extensions import db
from irisvue.models import ConsentHead, ConsentRecord, PrivacyRequest
from irisvue.models.base import utcnow
from tests.support.consent import cli_verification, record, verification
from tests.support.ledger import app_role_engine, tamper


@pytest.fixture
def chain(client, member):
    """A user who granted biometric capture and then withdrew it (the newest record)."""
    user, headers = member
    for consent_type, granted in [
        ("data_processing", True),
        ("biometric_capture", True),
        ("marketing", True),
        ("biometric_capture", False),
    ]:
        assert record(client, headers, consent_type, granted=granted).status_code in (201, 202)
    return user, headers


def test_new_records_are_keyed_and_anchored(app, client, chain):
    user, headers = chain
    assert verification(client, headers)["intact"] is True
    with app.app_context():
        records = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.user_id == user.id)
        ).all()
        assert {r.key_id for r in records} == {"sk1"}  # derived from SECRET_KEY
        head = db.session.get(ConsentHead, user.id)
        assert (head.seq, head.record_hash) == (4, max(records, key=lambda r: r.seq).record_hash)


def test_deleting_the_newest_record_is_detected(app, client, chain):
    user, headers = chain
    tamper(app, "DELETE FROM consent_records WHERE user_id = :u AND seq = 4", u=user.id)
    with app.app_context():
        assert has_live_consent(user.id)  # the withdrawal is gone: the grant looks live...
    report = verification(client, headers)  # ...but the chain no longer ends at its head
    assert (report["intact"], report["reason"], report["broken_at_seq"]) == (
        False,
        "head_mismatch",
        4,
    )
    result = cli_verification(app, user.id)
    assert result.exit_code == 1 and "head_mismatch" in result.output


def test_deleting_the_newest_records_and_the_head_is_detected(app, client, chain):
    user, headers = chain
    tamper(app, "DELETE FROM consent_records WHERE user_id = :u AND seq >= 3", u=user.id)
    tamper(app, "DELETE FROM consent_heads WHERE user_id = :u", u=user.id)
    report = verification(client, headers)
    assert (report["intact"], report["reason"]) == (False, "head_mismatch")


@pytest.mark.parametrize(
    "statements",
    [
        ["DELETE FROM consent_records WHERE user_id = :u AND seq = 4"],
        [
            "DELETE FROM consent_records WHERE user_id = :u AND seq >= 3",
            "DELETE FROM consent_heads WHERE user_id = :u",
        ],
    ],
    ids=["head-kept", "head-deleted"],
)
def test_the_next_consent_does_not_launder_a_deletion(app, client, chain, statements):
    """Appending after a deletion still records the consent, but must not re-anchor
    the shortened chain: the break stays visible."""
    user, headers = chain
    for statement in statements:
        tamper(app, statement, u=user.id)
    assert record(client, headers, "marketing", granted=False).status_code == 201
    report = verification(client, headers)
    assert (report["intact"], report["reason"]) == (False, "head_mismatch")


def _rewrite_unkeyed(app, user_id: uuid.UUID, *, drop_withdrawal: bool) -> None:
    """Rewrites the user's whole chain with recomputed unkeyed SHA-256 (version 1) hashes,
    as someone holding only database access could; optionally dropping the withdrawal."""
    with app.app_context():
        records = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.user_id == user_id).order_by("seq")
        ).all()
        rows, prev = [], GENESIS_HASH
        for r in records:
            if drop_withdrawal and r.seq == 4:
                continue
            r.key_id, r.prev_hash = None, prev
            r.record_hash = prev = compute_hash(r)
            rows.append({"id": r.id, "h": r.record_hash, "p": r.prev_hash})
        db.session.rollback()
    if drop_withdrawal:
        tamper(app, "DELETE FROM consent_records WHERE user_id = :u AND seq = 4", u=user_id)
    for row in rows:
        tamper(
            app,
            "UPDATE consent_records SET key_id = NULL, record_hash = :h, prev_hash = :p "
            "WHERE id = :id",
            **row,
        )


@pytest.mark.parametrize("head", ["kept", "forged", "deleted"])
def test_a_full_unkeyed_rewrite_is_detected(app, client, chain, head):
    user, headers = chain
    _rewrite_unkeyed(app, user.id, drop_withdrawal=True)
    with app.app_context():
        newest = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.user_id == user.id, ConsentRecord.seq == 3)
        ).one()
        # Every link and every (unkeyed) hash is consistent again:
        assert newest.record_hash == compute_hash(newest)
    if head == "forged":  # the head too, with the only MAC computable without the key
        forged = hashlib.sha256(newest.record_hash.encode()).hexdigest()
        tamper(
            app,
            "UPDATE consent_heads SET seq = 3, record_hash = :h, mac = :m WHERE user_id = :u",
            h=newest.record_hash,
            m=forged,
            u=user.id,
        )
    elif head == "deleted":
        tamper(app, "DELETE FROM consent_heads WHERE user_id = :u", u=user.id)
    report = verification(client, headers)
    assert (report["intact"], report["reason"]) == (False, "head_mismatch")
    assert cli_verification(app, user.id).exit_code == 1


def test_a_rewrite_keeping_the_newest_record_is_detected(app, client, chain):
    user, headers = chain
    _rewrite_unkeyed(app, user.id, drop_withdrawal=False)
    report = verification(client, headers)
    assert report["intact"] is False
    assert report["reason"] in ("hash_mismatch", "head_mismatch")


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE consent_records",
        "TRUNCATE consent_heads",
        "TRUNCATE users CASCADE",
    ],
)
def test_truncate_is_refused(app, client, chain, statement):
    _, headers = chain
    with app.app_context():
        with pytest.raises(DBAPIError, match="TRUNCATE refused"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert verification(client, headers) | {"head_hash": None} == {
        "intact": True,
        "checked": 4,
        "head_hash": None,
        "broken_at_seq": None,
        "broken_record_id": None,
        "reason": None,
    }


def _refused(conn, statement: str, match: str, **params) -> None:
    with pytest.raises(DBAPIError, match=match), conn.begin():
        conn.execute(text(statement), params)


def test_the_app_role_cannot_switch_on_the_erasure_bypass(app, client, chain, stack_env):
    user, headers = chain
    with app_role_engine(stack_env["DATABASE_URL"]) as engine, engine.connect() as conn:
        # The old switch: any session could set it. Now it opens nothing.
        with pytest.raises(DBAPIError, match="append-only"), conn.begin():
            conn.execute(text("SET LOCAL irisvue.erasure = 'on'"))
            conn.execute(text("DELETE FROM consent_records WHERE user_id = :u"), {"u": user.id})
        _refused(conn, "DELETE FROM consent_heads WHERE user_id = :u", "DELETE refused", u=user.id)
        _refused(conn, "UPDATE consent_heads SET seq = seq - 1", "only moves forward")
        _refused(conn, "UPDATE consent_records SET granted = true", "UPDATE refused")
        _refused(conn, "TRUNCATE consent_records", "TRUNCATE refused")
        _refused(conn, "DELETE FROM users WHERE id = :u", "append-only", u=user.id)
        # Becoming the role the gate trusts, or switching the triggers off: not allowed.
        _refused(conn, "SET ROLE irisvue_ledger", "permission denied")
        _refused(conn, "ALTER TABLE consent_records DISABLE TRIGGER USER", "must be owner")
        _refused(conn, "DROP TRIGGER consent_records_append_only ON consent_records", "owner")
        # The gate itself: only a user with a pending erasure request.
        _refused(conn, "SELECT erase_consent_ledger(:u)", "no pending erasure", u=user.id)
    assert verification(client, headers)["intact"] is True


def test_the_app_role_erases_through_the_gate(app, chain, stack_env):
    user, _ = chain
    with app.app_context():
        now = utcnow()
        db.session.add(
            PrivacyRequest(
                user_id=user.id, kind="erasure", jurisdiction="gdpr", received_at=now, due_at=now
            )
        )
        db.session.commit()
    with app_role_engine(stack_env["DATABASE_URL"]) as engine, engine.begin() as conn:
        erased = conn.execute(text("SELECT erase_consent_ledger(:u)"), {"u": user.id})
        assert erased.scalar_one() == 4
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user.id})
    with app.app_context():
        for model in (ConsentRecord, ConsentHead):
            count = select(sa.func.count()).select_from(model).where(model.user_id == user.id)
            assert db.session.scalar(count) == 0


def test_legacy_unkeyed_records_still_verify_and_chain_on(app, client, member):
    user, headers = member
    with app.app_context():  # two version 1 records, anchored as migration 0006 does
        prev = GENESIS_HASH
        for seq, granted in ((1, True), (2, False)):
            legacy = ConsentRecord(
                id=uuid.uuid4(),
                user_id=user.id,
                seq=seq,
                consent_type="marketing",
                jurisdiction="gdpr",
                locale="en",
                granted=granted,
                granted_at=utcnow() if granted else None,
                withdrawn_at=None if granted else utcnow(),
                document_version=1,
                document_sha256="0" * 64,
                prev_hash=prev,
                created_at=utcnow(),
            )
            legacy.record_hash = prev = compute_hash(legacy)
            db.session.add(legacy)
            db.session.flush()
        key_id, keys = current_keys()
        db.session.add(
            ConsentHead(
                user_id=user.id,
                seq=2,
                record_hash=prev,
                key_id=key_id,
                mac=head_mac(keys[key_id], user.id, 2, prev, key_id),
            )
        )
        db.session.commit()
    assert verification(client, headers)["intact"] is True
    assert record(client, headers, "marketing", granted=True).status_code == 201
    report = verification(client, headers)
    assert (report["intact"], report["checked"]) == (True, 3)


def test_ledger_keys_rotate(app, client, chain, monkeypatch):
    user, headers = chain
    monkeypatch.setenv("LEDGER_KEYS", "k2:" + "r" * 40)
    rotated = create_app()
    with rotated.app_context():
        from irisvue.consent.anchor import verify
        from irisvue.consent.documents import current_document
        from irisvue.consent.services import record_consent

        document = current_document("marketing", "gdpr", "en")
        receipt = record_consent(
            user.id,
            consent_type="marketing",
            jurisdiction="gdpr",
            granted=False,
            document_version=document.version,
        )
        assert receipt.record.key_id == "k2"
        assert verify(user.id).intact  # sk1 records and the k2 one
    monkeypatch.delenv("LEDGER_KEYS")
    report = verification(client, headers)  # an app that does not hold k2
    assert (report["intact"], report["reason"], report["broken_at_seq"]) == (
        False,
        "unknown_key",
        5,
    )
