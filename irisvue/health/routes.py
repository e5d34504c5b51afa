from __future__ import annotations

import json
from typing import Any

from flask import Response
from flask.views import MethodView

from irisvue.api import ApiBlueprint
from irisvue.health.schemas import LivenessSchema, ReadinessSchema
from irisvue.health.services import run_checks
from irisvue.version import __version__

blp = ApiBlueprint("health", __name__, description="Liveness and readiness probes (no auth).")


def _readiness(names: list[str]) -> tuple[dict[str, Any], int]:
    healthy, checks = run_checks(names)
    return {"status": "ok" if healthy else "unavailable", "checks": checks}, (
        200 if healthy else 503
    )


# The liveness answer never changes: serialised once (LivenessSchema, as Flask's
# compact JSON) instead of dumping a schema on every probe.
LIVENESS_BODY = (
    json.dumps(
        LivenessSchema().dump({"status": "ok", "version": __version__}), separators=(",", ":")
    )
    + "\n"
).encode()


def _liveness(operation_id: str) -> type[MethodView]:
    class LivenessViews(MethodView):
        @blp.doc(operationId=operation_id)
        @blp.response(200, LivenessSchema)
        def get(self) -> Response:
            """Liveness: the process answers; no dependency is touched."""
            return Response(LIVENESS_BODY, mimetype="application/json")

    return LivenessViews


# Two paths, one answer: each its own view, so each operation has its own id.
# health.probe answers the plain GETs of these paths without entering Flask.
LIVENESS_PATHS = {"/": "getLivenessRoot", "/health": "getLiveness"}
blp.route("/", endpoint="LivenessRootViews")(_liveness(LIVENESS_PATHS["/"]))
blp.route("/health", endpoint="LivenessViews")(_liveness(LIVENESS_PATHS["/health"]))


@blp.route("/health/ready")
class ReadinessViews(MethodView):
    @blp.doc(operationId="getReadiness")
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="A dependency is down")
    def get(self) -> tuple[dict[str, Any], int]:
        """Readiness: database, Redis and storage, each with a short timeout."""
        return _readiness(["db", "redis", "storage"])


def _single(name: str) -> type[MethodView]:
    class SingleCheckViews(MethodView):
        @blp.doc(operationId=f"get{name.capitalize()}Readiness")
        @blp.response(200, ReadinessSchema)
        @blp.alt_response(503, schema=ReadinessSchema, description=f"{name} is down")
        def get(self) -> tuple[dict[str, Any], int]:
            return _readiness([name])

    SingleCheckViews.get.__doc__ = f"Readiness of {name} alone."
    SingleCheckViews.__name__ = f"{name.capitalize()}HealthViews"
    return SingleCheckViews


for _name in ("db", "redis", "storage"):
    blp.route(f"/health/{_name}", endpoint=f"health_{_name}")(_single(_name))
