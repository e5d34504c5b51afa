from flask_smorest import Blueprint

blp = Blueprint(
    "privacy",
    __name__,
    url_prefix="/api/v1/privacy",
    description="Privacy rights: data export and account erasure.",
)

from irisvue.privacy import erasure_routes, export_routes  # noqa: E402,F401
