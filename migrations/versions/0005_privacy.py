"""privacy: privacy request records and erasure tombstones

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:25:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "privacy_requests",
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("jurisdiction", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("receipt_id", sa.String(length=64), nullable=True),
        sa.Column("counts", JSON, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("kind IN ('export', 'erasure')", name=op.f("ck_privacy_requests_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'completed')", name=op.f("ck_privacy_requests_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_privacy_requests_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
        sa.UniqueConstraint("receipt_id", name=op.f("uq_privacy_requests_receipt_id")),
    )
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_requests_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_privacy_requests_user_id"), ["user_id"], unique=False)

    op.create_table(
        "erasure_tombstones",
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_tombstones")),
        sa.UniqueConstraint("subject_hash", name=op.f("uq_erasure_tombstones_subject_hash")),
    )


def downgrade():
    op.drop_table("erasure_tombstones")
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_requests_user_id"))
        batch_op.drop_index(batch_op.f("ix_privacy_requests_status"))
    op.drop_table("privacy_requests")
