"""consent ledger: consent documents, hash-chained append-only records

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# PostgreSQL enforces the ledger's append-only rule itself, so a bug or a
# hand-typed statement cannot rewrite consent history. The account-erasure job
# (and the users → consent_records cascade it triggers) runs
# `SET LOCAL irisvue.erasure = 'on'` first; the setting dies with its transaction.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION consent_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('irisvue.erasure', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'consent_records is append-only: % refused', TG_OP
        USING HINT = 'Only account erasure may delete consent records.';
END
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER consent_records_append_only
BEFORE UPDATE OR DELETE ON consent_records
FOR EACH ROW EXECUTE FUNCTION consent_records_append_only()
"""

CONSENT_TYPE_CHECK = "IN ('biometric_capture', 'data_processing', 'marketing')"
JURISDICTION_CHECK = "IN ('gdpr', 'bipa', 'ccpa', 'generic')"


def upgrade():
    bind = op.get_bind()
    # Nothing wrote consent_records before this revision (the seed had no
    # writer); records without a chain could not be verified, so refuse them.
    existing = bind.execute(sa.text("SELECT count(*) FROM consent_records")).scalar()
    if existing:
        raise RuntimeError(
            f"consent_records holds {existing} rows written before the hash chain; "
            "migrate them by hand before running revision 0003"
        )

    op.create_table(
        "consent_documents",
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("jurisdiction", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(f"type {CONSENT_TYPE_CHECK}", name=op.f("ck_consent_documents_type")),
        sa.CheckConstraint(
            f"jurisdiction {JURISDICTION_CHECK}", name=op.f("ck_consent_documents_jurisdiction")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_consent_documents_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_documents")),
        sa.UniqueConstraint(
            "type", "jurisdiction", "locale", "version", name=op.f("uq_consent_documents_type")
        ),
    )

    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=False))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("document_version", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("document_sha256", sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column("record_hash", sa.String(length=64), nullable=False))
        batch_op.drop_column("consent_text_version")
        batch_op.create_check_constraint(op.f("ck_consent_records_seq"), "seq >= 1")
        batch_op.create_unique_constraint(
            op.f("uq_consent_records_user_id"), ["user_id", "seq"]
        )

    if bind.dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(APPEND_ONLY_TRIGGER)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_records_append_only ON consent_records")
        op.execute("DROP FUNCTION IF EXISTS consent_records_append_only()")

    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consent_text_version", sa.String(length=32), nullable=True)
        )
    op.execute(
        "UPDATE consent_records SET consent_text_version = CAST(document_version AS VARCHAR(32))"
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.alter_column(
            "consent_text_version", existing_type=sa.String(length=32), nullable=False
        )
        batch_op.drop_constraint(op.f("uq_consent_records_user_id"), type_="unique")
        batch_op.drop_constraint(op.f("ck_consent_records_seq"), type_="check")
        batch_op.drop_column("record_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("document_sha256")
        batch_op.drop_column("document_version")
        batch_op.drop_column("user_agent")
        batch_op.drop_column("locale")
        batch_op.drop_column("seq")

    op.drop_table("consent_documents")
