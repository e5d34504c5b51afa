from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_dump, validate

from irisvue.api import EnumField
from irisvue.consent.chain import CHAIN_BREAK_REASONS
from irisvue.consent.documents import DEFAULT_LOCALE, LOCALE_PATTERN, read_document_files
from irisvue.consent.jurisdiction import SOURCES
from irisvue.consent.services import ConsentReceipt
from irisvue.jobs.schemas import JobSchema
from irisvue.models.consent import CONSENT_TYPES, JURISDICTIONS

MAX_PAGE = 100


def ConsentType(**kwargs: Any) -> EnumField:  # noqa: N802 - named for its component
    return EnumField("ConsentType", CONSENT_TYPES, **kwargs)


def Jurisdiction(**kwargs: Any) -> EnumField:  # noqa: N802 - named for its component
    return EnumField("Jurisdiction", JURISDICTIONS, **kwargs)


_consent_type = validate.OneOf(CONSENT_TYPES)
_jurisdiction = validate.OneOf(JURISDICTIONS)
# A decision can only be recorded against a published text: the locales the
# packaged texts come in (every type and jurisdiction has each of them).
PUBLISHED_LOCALES = sorted({document.locale for document in read_document_files()})
_locale = validate.Regexp(f"^{LOCALE_PATTERN}$", error="Not a locale such as `en` or `pt-BR`.")


class StrictBoolean(fields.Boolean):
    """A JSON true/false only: a consent is never inferred from "yes", 1 or "on"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a boolean (true or false).")
        return value


# A history cursor is the seq of the last record of the previous page, in
# decimal. Every value the documented pattern admits is a valid position (past
# the end: an empty page), anything else is a 422.
SEQ_CURSOR_PATTERN = r"^[0-9]{1,12}$"
SEQ_CURSOR_DOC = {"pattern": SEQ_CURSOR_PATTERN, "maxLength": 12, "example": "50"}
_SEQ_CURSOR = re.compile(SEQ_CURSOR_PATTERN.removeprefix("^").removesuffix("$"))


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """Raises ValueError for anything the documented pattern does not admit."""
    # fullmatch, not `$`: Python's `$` would also accept a trailing newline.
    if not _SEQ_CURSOR.fullmatch(cursor):
        raise ValueError("invalid cursor")
    return int(cursor)


class Cursor(fields.String):
    """The seq of the last record of the previous page."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else encode_cursor(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return decode_cursor(super()._deserialize(value, attr, data, **kwargs))
        except ValueError:
            raise ValidationError("Not a cursor returned by this endpoint.") from None


class DocumentQueryArgsSchema(Schema):
    type = ConsentType(validate=_consent_type)
    jurisdiction = Jurisdiction(validate=_jurisdiction)
    locale = fields.String(load_default=DEFAULT_LOCALE, validate=_locale)


class ConsentDocumentSchema(Schema):
    type = ConsentType(required=True)
    jurisdiction = Jurisdiction(required=True)
    locale = fields.String(required=True, metadata={"example": "en"})
    version = fields.Integer(required=True, metadata={"example": 1})
    text = fields.String(required=True, metadata={"description": "Markdown"})
    sha256 = fields.String(required=True, metadata={"description": "hex SHA-256 of the UTF-8 text"})
    published_at = fields.DateTime(required=True)


class ConsentDocumentListSchema(Schema):
    items = fields.List(fields.Nested(ConsentDocumentSchema), required=True)


class ConsentCreateSchema(Schema):
    consent_type = ConsentType(required=True, validate=_consent_type)
    jurisdiction = Jurisdiction(required=True, validate=_jurisdiction)
    granted = StrictBoolean(required=True)
    document_version = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "the `version` of the text the user was shown"},
    )
    locale = fields.String(
        load_default=DEFAULT_LOCALE,
        validate=_locale,  # a well-formed locale with no text: 422 `unknown_document`
        metadata={"enum": PUBLISHED_LOCALES, "description": "the language of the text shown"},
    )


class WithdrawSchema(Schema):
    jurisdiction = Jurisdiction(
        validate=_jurisdiction,
        metadata={"description": "defaults to that of the user's latest record of this type"},
    )


class ConsentRecordSchema(Schema):
    id = fields.UUID(required=True)
    seq = fields.Integer(required=True, metadata={"description": "1, 2, 3... per user"})
    consent_type = ConsentType(required=True)
    jurisdiction = Jurisdiction(required=True)
    locale = fields.String(required=True)
    granted = fields.Boolean(required=True)
    recorded_at = fields.DateTime(required=True, attribute="created_at")
    granted_at = fields.DateTime(required=True, allow_none=True)
    withdrawn_at = fields.DateTime(required=True, allow_none=True)
    document_version = fields.Integer(required=True)
    document_sha256 = fields.String(required=True)
    ip_address = fields.String(required=True, allow_none=True)
    user_agent = fields.String(required=True, allow_none=True)
    prev_hash = fields.String(
        required=True, metadata={"description": "record_hash of the previous record (or zeros)"}
    )
    record_hash = fields.String(required=True)


_RECORD_ATTRIBUTES = [f.attribute or name for name, f in ConsentRecordSchema().dump_fields.items()]


class ConsentReceiptSchema(ConsentRecordSchema):
    job = fields.Nested(
        JobSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the queued destruction of biometric data, on withdrawal"},
    )

    @pre_dump
    def _flatten(self, receipt: ConsentReceipt, **kwargs: Any) -> dict[str, Any]:
        data = {attribute: getattr(receipt.record, attribute) for attribute in _RECORD_ATTRIBUTES}
        return data | {"job": receipt.job}


class ConsentStateSchema(Schema):
    consent_type = ConsentType(required=True)
    granted = fields.Boolean(required=True)
    record = fields.Nested(
        ConsentRecordSchema,
        allow_none=True,
        required=True,
        metadata={"description": "the latest record of this type; null if never asked"},
    )


class ConsentStateListSchema(Schema):
    items = fields.List(fields.Nested(ConsentStateSchema), required=True)


class HistoryQueryArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = Cursor(
        metadata={**SEQ_CURSOR_DOC, "description": "`next_cursor` of the previous page"}
    )
    verify = fields.Boolean(
        load_default=False, metadata={"description": "also verify the whole hash chain"}
    )


class ChainReportSchema(Schema):
    intact = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={"description": "records walked"})
    head_hash = fields.String(required=True, allow_none=True)
    broken_at_seq = fields.Integer(required=True, allow_none=True)
    broken_record_id = fields.String(required=True, allow_none=True)
    reason = EnumField(
        "ChainBreakReason",
        CHAIN_BREAK_REASONS,
        required=True,
        allow_none=True,
        metadata={"description": "why the chain is broken; null when intact"},
    )


class HistorySchema(Schema):
    items = fields.List(fields.Nested(ConsentRecordSchema), required=True)
    next_cursor = Cursor(
        allow_none=True,
        required=True,
        metadata={**SEQ_CURSOR_DOC, "description": "null on the last page"},
    )
    verification = fields.Nested(
        ChainReportSchema, metadata={"description": "present with ?verify=true"}
    )


class JurisdictionSuggestionSchema(Schema):
    jurisdiction = Jurisdiction(
        required=True,
        metadata={"description": "the jurisdiction whose consent texts to show"},
    )
    country = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "ISO 3166-1 alpha-2 code; null if unknown", "example": "US"},
    )
    region = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "the first-level subdivision's ISO 3166-2 code without the country "
            "prefix (`IL` for US-IL); null if unknown",
            "example": "IL",
        },
    )
    source = fields.String(
        required=True,
        metadata={
            "enum": list(SOURCES),
            "description": "`geoip`: located by the GeoIP database; `not_found`: the address "
            "is not in it (private, loopback, unallocated); `unconfigured`: no database; "
            "`unavailable`: the database failed at lookup",
        },
    )
