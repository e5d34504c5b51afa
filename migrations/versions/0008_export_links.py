"""export links: no signed download token stored in jobs.result any more

The link is minted when the job is read (irisvue.privacy.export_services);
links stored by earlier releases are removed. No schema change.

Revision ID: 0008_export_links
Revises: 0007_auth_hardening
Create Date: 2026-12-01 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0008_export_links"
down_revision = "0007_auth_hardening"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STORED_LINK = ("download_url", "expires_at")


def upgrade():
    bind = op.get_bind()
    jobs = sa.table(
        "jobs", sa.column("id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("result", JSON)
    )
    rows = bind.execute(
        sa.select(jobs.c.id, jobs.c.result).where(jobs.c.kind == "privacy.export")
    ).all()
    for job_id, stored in rows:
        if not isinstance(stored, dict) or not any(key in stored for key in STORED_LINK):
            continue
        kept = {key: value for key, value in stored.items() if key not in STORED_LINK}
        bind.execute(jobs.update().where(jobs.c.id == job_id).values(result=kept))


def downgrade():
    pass  # the links are minted on read; older releases simply show none
