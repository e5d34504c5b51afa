"""Schemas of the export endpoints."""

from marshmallow import Schema, fields, validate

DOWNLOAD_SCHEMA = {"type": "string", "format": "binary"}


class ExportDownloadArgsSchema(Schema):
    # itsdangerous' URL-safe serialisation: base64url parts joined by dots.
    token = fields.String(
        required=True,
        validate=[validate.Length(max=512), validate.Regexp(r"^[A-Za-z0-9_.-]+$")],
        metadata={"description": "the job's `result.download_token` (also in `download_url`)"},
    )


class ExportResultSchema(Schema):
    """The result of a `privacy.export` job; the link is minted each time the job is read."""

    size = fields.Integer(required=True, metadata={"description": "bytes of the ZIP"})
    captures = fields.Integer(required=True, metadata={"description": "photos in the archive"})
    download_url = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "GET it (no bearer token): absolute when the server knows its "
            "public origin, else a path; null once the archive was deleted",
            "example": "/api/v1/privacy/export/3f0c…/download?token=…",
        },
    )
    download_token = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the `token` of downloadExport (the same as in download_url)"},
    )
    expires_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "the link stops working then, or sooner: at sign-out everywhere, a "
            "password change, the withdrawal of biometric consent or erasure"
        },
    )
