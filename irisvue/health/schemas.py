from marshmallow import Schema, fields


class LivenessSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    version = fields.String(required=True)


class CheckSchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ok` or `error`"})
    latency_ms = fields.Float(required=True)
    backend = fields.String()
    error = fields.String(metadata={"description": "error class or `timeout`"})


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ok` or `unavailable`"})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), required=True)
