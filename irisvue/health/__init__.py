from flask_smorest import Blueprint

blp = Blueprint("health", __name__, description="Liveness and readiness probes (no auth).")

from irisvue.health import routes  # noqa: E402,F401
