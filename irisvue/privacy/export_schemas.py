"""Schemas of the export endpoints."""

from marshmallow import Schema, fields

DOWNLOAD_SCHEMA = {"type": "string", "format": "binary"}


class ExportDownloadArgsSchema(Schema):
    token = fields.String(
        required=True,
        metadata={"description": "the signed token from the job's `result.download_url`"},
    )
