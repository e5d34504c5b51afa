"""The daily retention sweep (RQ cron; `flask privacy sweep` by hand).

Destroys the biometric data of users inactive for BIOMETRIC_RETENTION_DAYS
(BIPA §15(a): at most three years after the last interaction), spent email
tokens and dead sessions, expired export archives and audit events older than
AUDIT_RETENTION_DAYS (pseudonymous, but personal data all the same). Every step is
idempotent, so a sweep interrupted half-way is simply run again. It logs
counts, never who.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from flask import current_app
from sqlalchemy import delete, or_, select

from irisvue.auth.nonces import purge_spent
from irisvue.auth.services import purge_spent_credentials
from irisvue.captures.destruction import destroy_biometrics
from irisvue.extensions import db
from irisvue.jobs.runner import app_context
from irisvue.models import AuditEvent, Capture, User, UserKey
from irisvue.models.base import utcnow
from irisvue.privacy.export_services import purge_expired_exports

log = structlog.get_logger(__name__)

BATCH = 100


def inactive_biometric_owners(limit: int = BATCH) -> list:
    """Ids of users past the retention period who still hold a capture or a data key."""
    cutoff = utcnow() - timedelta(days=int(current_app.config["BIOMETRIC_RETENTION_DAYS"]))
    holds = or_(
        select(Capture.id).where(Capture.user_id == User.id).exists(),
        select(UserKey.id).where(UserKey.user_id == User.id).exists(),
    )
    stmt = select(User.id).where(User.last_seen_at < cutoff, holds).order_by(User.id).limit(limit)
    return list(db.session.scalars(stmt))


def purge_inactive_biometrics() -> dict[str, int]:
    """Destroy the biometrics (key, objects, captures) of every inactive user."""
    totals = {"users": 0, "captures": 0, "objects": 0}
    done: set = set()
    while True:
        batch = [user_id for user_id in inactive_biometric_owners() if user_id not in done]
        db.session.rollback()
        if not batch:
            return totals
        for user_id in batch:
            destroyed = destroy_biometrics(user_id)
            done.add(user_id)
            totals["users"] += 1
            totals["captures"] += destroyed["captures"]
            totals["objects"] += destroyed["objects"]


def purge_old_audit_events() -> int:
    """Delete audit events older than AUDIT_RETENTION_DAYS; returns how many."""
    cutoff = utcnow() - timedelta(days=int(current_app.config["AUDIT_RETENTION_DAYS"]))
    deleted = db.session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff))
    db.session.commit()
    return deleted.rowcount or 0


def sweep() -> dict[str, int]:
    """Run every retention rule once; returns the counts (what it logs too)."""
    counts = purge_inactive_biometrics()
    counts.update(purge_spent_credentials())
    counts.update(purge_spent())
    counts["exports"] = purge_expired_exports()
    counts["audit_events"] = purge_old_audit_events()
    log.info("retention_sweep", **counts)
    return counts


def run_sweep() -> dict[str, int]:
    """RQ entry point of the daily cron job (no arguments: nothing to serialise)."""
    with app_context():
        return sweep()
