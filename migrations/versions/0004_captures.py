"""captures: encrypted biometric uploads and users' wrapped data keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:16:22.506763

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "captures",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("object_key", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png')", name=op.f("ck_captures_content_type")
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_captures_size")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_captures_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
        sa.UniqueConstraint("object_key", name=op.f("uq_captures_object_key")),
    )
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_captures_user_id_created_at", ["user_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "user_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("master_key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_keys")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_keys_user_id")),
    )


def downgrade():
    op.drop_table("user_keys")
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index("ix_captures_user_id_created_at")
    op.drop_table("captures")
