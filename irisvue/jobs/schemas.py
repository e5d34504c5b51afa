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
