from flask_smorest import Blueprint

blp = Blueprint(
    "jobs", __name__, url_prefix="/api/v1/jobs", description="Background job status (owner only)."
)

from irisvue.jobs import routes  # noqa: E402,F401
