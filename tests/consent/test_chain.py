"""Tamper evidence (hash chain + verify) and append-only enforcement by PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError

from irisvue.consent.anchor import erase_ledger
from irisvue.consent.chain import GENESIS_HASH, compute_hash
from irisvue.consent.keys import current_keys
from irisvue.extensions import db
from irisvue.models import ConsentRecord, PrivacyRequest, User
from irisvue.models.base import utcnow
from tests.support.consent import CONSENTS, cli_verification, record, verification
from tests.support.ledger import tamper

HISTORY = CONSENTS + "history"


@pytest.fixture
def chain(client, member):
    """A user with four records."""
    user, headers = member
    for consent_type, granted in [
        ("data_processing", True),
        ("marketing", True),
        ("biometric_capture", True),
        ("marketing", False),
    ]:
        assert record(client, headers, consent_type, granted=granted).status_code in (201, 202)
    return user, headers


def _verify_api(client, headers) -> dict:
    return verification(client, headers, limit=1)  # one record per page: still the whole chain


def test_an_untouched_chain_verifies(app, client, chain):
    user, headers = chain
    report = _verify_api(client, headers)
    last = client.get(HISTORY, headers=headers).get_json()["items"][-1]
    assert report == {
        "intact": True,
        "checked": 4,
        "head_hash": last["record_hash"],
        "broken_at_seq": None,
        "broken_record_id": None,
        "reason": None,
    }
    result = cli_verification(app, user.id)
    assert result.exit_code == 0, result.output
    assert "intact: 4 record(s)" in result.output


def test_an_edited_record_breaks_the_chain(app, client, chain):
    user, headers = chain
    tamper(
        app, "UPDATE consent_records SET granted = false WHERE user_id = :u AND seq = 2", u=user.id
    )

    report = _verify_api(client, headers)
    assert (report["intact"], report["broken_at_seq"], report["reason"]) == (
        False,
        2,
        "hash_mismatch",
    )
    result = cli_verification(app, user.id)
    assert result.exit_code == 1
    assert "BROKEN at seq 2" in result.output
    assert "hash_mismatch" in result.output


def test_a_rehashed_edit_still_breaks_the_next_link(app, client, chain):
    user, headers = chain
    # The attacker also recomputes the edited record's own hash...
    with app.app_context():
        forged = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.user_id == user.id, ConsentRecord.seq == 3)
        ).one()
        forged.granted = False
        new_hash = compute_hash(forged, current_keys()[1][forged.key_id])
        db.session.rollback()
    tamper(
        app,
        "UPDATE consent_records SET granted = false, record_hash = :h "
        "WHERE user_id = :u AND seq = 3",
        h=new_hash,
        u=user.id,
    )
    # ...but record 4 still points at the original.
    report = _verify_api(client, headers)
    assert (report["intact"], report["broken_at_seq"], report["reason"]) == (
        False,
        4,
        "prev_hash_mismatch",
    )


def test_a_removed_record_breaks_the_chain(app, client, chain):
    user, headers = chain
    tamper(app, "DELETE FROM consent_records WHERE user_id = :u AND seq = 2", u=user.id)
    report = _verify_api(client, headers)
    assert (report["intact"], report["broken_at_seq"], report["reason"]) == (False, 3, "seq_gap")
    assert cli_verification(app, user.id).exit_code == 1


def test_verify_cli_rejects_a_malformed_user_id(app):
    assert cli_verification(app, "not-a-uuid").exit_code == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_records SET granted = NOT granted",
        "UPDATE consent_records SET record_hash = prev_hash",
        "DELETE FROM consent_records",
    ],
)
def test_postgresql_refuses_update_and_delete(app, client, chain, statement):
    _, headers = chain
    with app.app_context():
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert _verify_api(client, headers)["intact"] is True
    assert len(client.get(HISTORY, headers=headers).get_json()["items"]) == 4


def test_deleting_the_user_cascades_only_during_an_erasure(app, chain):
    user, _ = chain
    with app.app_context():
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(delete(User).where(User.id == user.id))
        db.session.rollback()
        # The old bypass is gone: the setting opens nothing any more.
        db.session.execute(text("SET LOCAL irisvue.erasure = 'on'"))
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(delete(User).where(User.id == user.id))
        db.session.rollback()
        # The ledger's gate refuses a user without a pending erasure request...
        with pytest.raises(DBAPIError, match="no pending erasure"):
            erase_ledger(user.id)
        db.session.rollback()

        # ...and deletes exactly that user's ledger during one.
        db.session.add(_erasure_request(user))
        db.session.commit()
        assert erase_ledger(user.id) == 4
        db.session.execute(delete(User).where(User.id == user.id))
        db.session.commit()
        left = db.session.scalars(
            select(ConsentRecord).where(ConsentRecord.user_id == user.id)
        ).all()
        assert left == []

        other = User(email="after-erasure@example.com")
        db.session.add(other)
        db.session.commit()
        db.session.add(_copy_of_genesis(other))
        db.session.commit()
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(delete(ConsentRecord).where(ConsentRecord.user_id == other.id))
        db.session.rollback()


def _erasure_request(user: User) -> PrivacyRequest:
    now = utcnow()
    return PrivacyRequest(
        user_id=user.id, kind="erasure", jurisdiction="gdpr", received_at=now, due_at=now
    )


def _copy_of_genesis(user: User) -> ConsentRecord:
    entry = ConsentRecord(
        id=uuid.uuid4(),
        user_id=user.id,
        seq=1,
        consent_type="marketing",
        jurisdiction="gdpr",
        locale="en",
        granted=True,
        granted_at=utcnow(),
        document_version=1,
        document_sha256="0" * 64,
        prev_hash=GENESIS_HASH,
        created_at=utcnow(),
    )
    entry.record_hash = compute_hash(entry)
    return entry
