"""Schemas of the export endpoints."""

from marshmallow import Schema, fields, validate

DOWNLOAD_SCHEMA = {"type": "string", "format": "binary"}


class ExportDownloadArgsSchema(Schema):
    # itsdangerous' URL-safe serialisation: base64url parts joined by dots.
    token = fields.String(
        required=True,
        validate=[validate.Length(max=512), validate.Regexp(r"^[A-Za-z0-9_.-]+$")],
        metadata={"description": "the signed token from the job's `result.download_url`"},
    )
