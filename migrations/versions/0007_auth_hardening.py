"""auth hardening: email tokens bound to their address, pending security notices

Revision ID: 0007_auth_hardening
Revises: 0006_ledger_anchor
Create Date: 2026-12-01 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0007_auth_hardening"
down_revision = "0006_ledger_anchor"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_hash", sa.String(length=32), nullable=True))
    op.create_table(
        "security_notices",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('password_changed', 'email_changed', 'email_added')",
            name=op.f("ck_security_notices_event"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_security_notices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_notices")),
    )
    with op.batch_alter_table("security_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_security_notices_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("security_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_security_notices_user_id"))
    op.drop_table("security_notices")
    with op.batch_alter_table("email_tokens", schema=None) as batch_op:
        batch_op.drop_column("address_hash")
