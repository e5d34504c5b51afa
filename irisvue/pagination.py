"""Keyset cursors whose documented pattern is exactly what the server accepts.

A cursor names a position, `<microseconds since the epoch>_<uuid as 32 hex>`,
the (created_at, id) of the last row of the previous page. Every string the
OpenAPI `pattern` admits decodes to some position (an empty page at worst),
and every string it does not admit is a 422: a client, or a fuzzer, can never
find a value the document allows that the server refuses. Cursors are not
secret: each query is scoped to the caller, so a position reveals nothing.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

KEYSET_PATTERN = r"^[0-9]{1,16}_[0-9a-f]{32}$"
KEYSET_MAX_LENGTH = 16 + 1 + 32
KEYSET_DOC = {
    "pattern": KEYSET_PATTERN,
    "maxLength": KEYSET_MAX_LENGTH,
    "description": "`next_cursor` of the previous page",
    "example": "1795447786123456_0f8fad5bd9cb469fa16570867728950e",
}

_KEYSET = re.compile(KEYSET_PATTERN.removeprefix("^").removesuffix("$"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_keyset(created_at: datetime, ident: uuid.UUID) -> str:
    if created_at.tzinfo is None:  # naive values are UTC (SQLite in the embedded stack)
        created_at = created_at.replace(tzinfo=UTC)
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{ident.hex}"


def decode_keyset(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor names; ValueError for anything the pattern does not admit."""
    # fullmatch, not `$`: Python's `$` would also accept a trailing newline.
    if not isinstance(cursor, str) or not _KEYSET.fullmatch(cursor):
        raise ValueError("invalid cursor")
    micros, _, ident = cursor.partition("_")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=ident)
