from marshmallow import Schema, fields

from irisvue.api import EnumField
from irisvue.jobs import results
from irisvue.models.job import JOB_STATUSES


class JobSchema(Schema):
    id = fields.UUID(required=True)
    kind = fields.String(
        required=True,
        metadata={
            "example": "privacy.export",
            "description": "what the job does (`privacy.export`, `captures.destroy_biometrics`, "
            "...); says which member of `result` to expect",
        },
    )
    status = EnumField("JobStatus", JOB_STATUSES, required=True)
    progress = fields.Integer(required=True, metadata={"description": "0..100"})
    result = fields.Function(
        results.present,
        required=True,
        allow_none=True,
        metadata={"allOf": [results.RESULT_REF], "description": "what the job produced"},
    )
    error = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "error code of the last failed attempt (no personal data)"},
    )
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True, allow_none=True)


def job_links(job_id: str) -> dict[str, dict[str, object]]:
    """OpenAPI links from an answer carrying a job (at `job_id`) to following it."""
    parameters = {"job_id": job_id}
    return {
        "GetJob": {"operationId": "getJob", "parameters": parameters},
        "GetJobEvents": {"operationId": "getJobEvents", "parameters": parameters},
    }


# One Server-Sent Event of GET /jobs/{job_id}/events (the `JobEvent` component).
JOB_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["job", "timeout"],
            "description": "`job` on every change of the job; `timeout` when the stream "
            "reached its longest duration (reconnect to continue)",
        },
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "1, 2, 3... per stream"},
        "data": {
            "type": "string",
            "description": "JSON: the job object (as GET /jobs/{job_id}) for `job`; "
            '`{"reason": "max_duration"}` for `timeout`',
        },
        "retry": {"type": "integer", "description": "reconnection delay in milliseconds"},
    },
}
# The stream's body. OpenAPI 3.0 has no `itemSchema` (3.2): tools that read the
# stream event by event (schemathesis) validate each event against `schema`,
# generated clients hand back the whole body as text. `anyOf` serves both.
JOB_EVENTS_SCHEMA = {
    "description": "The stream as text (`retry: 2000`, then `id:`, `event:` and `data:` lines "
    "per event, `: keep-alive` comments in between); each event is a `JobEvent`.",
    "anyOf": [{"type": "string"}, {"$ref": "#/components/schemas/JobEvent"}],
}
