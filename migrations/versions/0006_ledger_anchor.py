"""ledger anchor: keyed record hashes (key_id), the anchored head, erasure gate, no TRUNCATE

Revision ID: 0006_ledger_anchor
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000

Records written from here on carry `key_id` and an HMAC (hash version 2);
older ones keep verifying as unkeyed SHA-256 (version 1). Every user's chain
gets a head (consent_heads) holding an HMAC over its newest record; chains that
already exist are anchored here, with the ledger key of the app running the
migration (Flask-Migrate runs it inside the app).

PostgreSQL: a DELETE on consent_records / consent_heads passes the triggers
only when it runs as the NOLOGIN role `irisvue_ledger`, i.e. inside
`erase_consent_ledger(user)` (SECURITY DEFINER, owned by that role), which
deletes only that user's rows and only while an erasure request of the user is
pending. `SET LOCAL irisvue.erasure` no longer does anything. TRUNCATE of
either table is refused. The role is cluster-wide: downgrade keeps it.
"""
import uuid

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0006_ledger_anchor"
down_revision = "0005"
branch_labels = None
depends_on = None

LEDGER_ROLE = "irisvue_ledger"

APPEND_ONLY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION consent_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = '{LEDGER_ROLE}' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'consent_records is append-only: % refused', TG_OP
        USING HINT = 'Only account erasure (erase_consent_ledger) may delete consent records.';
END
$$
"""
# Revision 0003's version, restored by downgrade.
OLD_APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION consent_records_append_only() RETURNS trigger
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
HEADS_FUNCTION = f"""
CREATE FUNCTION consent_heads_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_user = '{LEDGER_ROLE}' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'consent_heads is append-only: DELETE refused'
            USING HINT = 'Only account erasure (erase_consent_ledger) may delete a head.';
    END IF;
    IF NEW.user_id = OLD.user_id AND NEW.seq > OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent_heads only moves forward: UPDATE refused';
END
$$
"""
NO_TRUNCATE_FUNCTION = """
CREATE FUNCTION consent_ledger_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME;
END
$$
"""
ERASE_FUNCTION = """
CREATE FUNCTION erase_consent_ledger(p_user uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    deleted integer;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM privacy_requests
        WHERE user_id = p_user AND kind = 'erasure' AND status = 'pending'
    ) THEN
        RAISE EXCEPTION 'erase_consent_ledger: no pending erasure request for this user';
    END IF;
    DELETE FROM consent_heads WHERE user_id = p_user;
    DELETE FROM consent_records WHERE user_id = p_user;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$
"""
CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LEDGER_ROLE}') THEN
        CREATE ROLE {LEDGER_ROLE} NOLOGIN;
    END IF;
END
$$
"""
# A migrating role that is not a superuser needs membership to hand the function over.
GIVE_FUNCTION_TO_ROLE = f"""
DO $$
DECLARE
    superuser boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
    IF NOT superuser THEN
        EXECUTE format('GRANT {LEDGER_ROLE} TO %I', current_user);
    END IF;
    ALTER FUNCTION erase_consent_ledger(uuid) OWNER TO {LEDGER_ROLE};
    IF NOT superuser THEN
        EXECUTE format('REVOKE {LEDGER_ROLE} FROM %I', current_user);
    END IF;
END
$$
"""


def _anchor_existing_chains(bind) -> None:
    newest = bind.execute(
        sa.text(
            "SELECT r.user_id, r.seq, r.record_hash FROM consent_records r "
            "JOIN (SELECT user_id, max(seq) AS seq FROM consent_records GROUP BY user_id) m "
            "ON m.user_id = r.user_id AND m.seq = r.seq"
        )
    ).all()
    if not newest:
        return
    from flask import current_app

    from irisvue.consent.chain import head_mac
    from irisvue.consent.keys import ledger_keys

    key_id, keys = ledger_keys(current_app.config)
    heads = sa.table(
        "consent_heads",
        sa.column("user_id", sa.Uuid()),
        sa.column("seq", sa.Integer()),
        sa.column("record_hash", sa.String()),
        sa.column("key_id", sa.String()),
        sa.column("mac", sa.String()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = sa.func.now()
    for user_id, seq, record_hash in newest:
        user = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
        mac = head_mac(keys[key_id], user, seq, record_hash, key_id)
        bind.execute(
            heads.insert().values(
                user_id=user, seq=seq, record_hash=record_hash, key_id=key_id, mac=mac,
                updated_at=now,
            )
        )


def upgrade():
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))

    op.create_table(
        "consent_heads",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_consent_heads_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_consent_heads")),
    )
    bind = op.get_bind()
    _anchor_existing_chains(bind)

    if bind.dialect.name != "postgresql":
        return
    schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(HEADS_FUNCTION)
    op.execute(NO_TRUNCATE_FUNCTION)
    op.execute(
        "CREATE TRIGGER consent_heads_forward_only BEFORE UPDATE OR DELETE ON consent_heads "
        "FOR EACH ROW EXECUTE FUNCTION consent_heads_forward_only()"
    )
    for table in ("consent_records", "consent_heads"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_no_truncate()"
        )
    op.execute(CREATE_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {LEDGER_ROLE}")
    op.execute(f"GRANT SELECT ON privacy_requests TO {LEDGER_ROLE}")
    op.execute(f"GRANT SELECT, DELETE ON consent_records, consent_heads TO {LEDGER_ROLE}")
    op.execute(ERASE_FUNCTION.format(schema=schema))
    op.execute(GIVE_FUNCTION_TO_ROLE)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
        op.execute("DROP FUNCTION IF EXISTS erase_consent_ledger(uuid)")
        op.execute("DROP TRIGGER IF EXISTS consent_records_no_truncate ON consent_records")
        op.execute("DROP TRIGGER IF EXISTS consent_heads_no_truncate ON consent_heads")
        op.execute("DROP TRIGGER IF EXISTS consent_heads_forward_only ON consent_heads")
        op.execute("DROP FUNCTION IF EXISTS consent_ledger_no_truncate()")
        op.execute("DROP FUNCTION IF EXISTS consent_heads_forward_only()")
        op.execute(OLD_APPEND_ONLY_FUNCTION)
        op.execute(f"REVOKE ALL ON consent_records, consent_heads FROM {LEDGER_ROLE}")
        op.execute(f"REVOKE ALL ON privacy_requests FROM {LEDGER_ROLE}")
        op.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {LEDGER_ROLE}")

    op.drop_table("consent_heads")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_column("key_id")
