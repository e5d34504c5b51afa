"""sessions_epoch: users.sessions_epoch, bumped when every session is revoked at once

Export links were bound to the user's oldest live session, so signing out of
that one device (or its expiry) voided them too; they are now bound to this
counter, which only sign-out everywhere, a password change or reset and
erasure move.

Revision ID: 0010_sessions_epoch
Revises: 0009_identities
Create Date: 2026-12-01 15:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0010_sessions_epoch"
down_revision = "0009_identities"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "users",
        sa.Column("sessions_epoch", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade():
    op.drop_column("users", "sessions_epoch")
