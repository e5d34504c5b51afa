"""Every model, imported so Alembic's autogenerate sees the whole schema."""

from irisvue.models.consent import ConsentRecord
from irisvue.models.job import Job
from irisvue.models.user import User

__all__ = ["ConsentRecord", "Job", "User"]
