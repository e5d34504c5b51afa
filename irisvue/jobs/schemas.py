from marshmallow import Schema, fields

from irisvue.models.job import JOB_STATUSES


class JobSchema(Schema):
    id = fields.UUID(required=True)
    kind = fields.String(required=True, metadata={"example": "email.welcome"})
    status = fields.String(
        required=True, metadata={"enum": list(JOB_STATUSES), "example": "finished"}
    )
    progress = fields.Integer(required=True, metadata={"description": "0..100"})
    result = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        allow_none=True,
        metadata={"description": "what the job produced, once finished"},
    )
    error = fields.String(
        allow_none=True,
        metadata={"description": "error code of the last failed attempt (no personal data)"},
    )
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True)


def job_links(job_id: str) -> dict[str, dict[str, object]]:
    """OpenAPI links from an answer carrying a job (at `job_id`) to following it."""
    parameters = {"item_id": job_id}
    return {
        "GetJob": {"operationId": "getJob", "parameters": parameters},
        "GetJobEvents": {"operationId": "getJobEvents", "parameters": parameters},
    }


# One Server-Sent Event of GET /jobs/{id}/events. OpenAPI 3.0 has no
# `itemSchema` (3.2), so the media type's `schema` describes each event, as
# tools read it: the fields of the event, `data` being the JSON text.
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
            "description": "JSON: the job object (as GET /jobs/{id}) for `job`; "
            '`{"reason": "max_duration"}` for `timeout`',
        },
        "retry": {"type": "integer", "description": "reconnection delay in milliseconds"},
    },
}
