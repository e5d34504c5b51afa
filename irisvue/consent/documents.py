"""Consent texts: versioned files in the package, loaded into `consent_documents`.

A file is named `<type>.<jurisdiction>.<locale>.v<version>.md`. Once a version
is published its text never changes (records pin its sha256): an edited file
must be saved under the next version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from irisvue.extensions import db
from irisvue.models.base import utcnow
from irisvue.models.consent import CONSENT_TYPES, JURISDICTIONS, ConsentDocument

TEXTS_DIR = Path(__file__).resolve().parent / "texts"
DEFAULT_LOCALE = "en"
LOCALE_PATTERN = r"[a-z]{2}(?:-[A-Z]{2})?"
_FILENAME = re.compile(
    rf"^(?P<type>[a-z_]+)\.(?P<jurisdiction>[a-z]+)\.(?P<locale>{LOCALE_PATTERN})"
    r"\.v(?P<version>[1-9][0-9]{0,5})\.md$"
)


class DocumentLoadError(Exception):
    """The text files cannot be published as they are; nothing was loaded."""


@dataclass(frozen=True)
class DocumentFile:
    name: str
    type: str
    jurisdiction: str
    locale: str
    version: int
    text: str
    sha256: str


@dataclass
class LoadResult:
    published: list[str] = field(default_factory=list)
    unchanged: int = 0


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_document_files(directory: Path = TEXTS_DIR) -> list[DocumentFile]:
    """Parses every `*.md` in `directory`; a misnamed file is an error, not skipped."""
    documents = []
    for path in sorted(directory.glob("*.md")):
        match = _FILENAME.match(path.name)
        if (
            not match
            or match["type"] not in CONSENT_TYPES
            or match["jurisdiction"] not in JURISDICTIONS
        ):
            raise DocumentLoadError(
                f"{path.name}: expected <type>.<jurisdiction>.<locale>.v<N>.md with type in "
                f"{', '.join(CONSENT_TYPES)} and jurisdiction in {', '.join(JURISDICTIONS)}"
            )
        # A checkout with CRLF line endings must not look like an edited text.
        text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
        if not text.strip():
            raise DocumentLoadError(f"{path.name}: the text is empty")
        documents.append(
            DocumentFile(
                name=path.name,
                type=match["type"],
                jurisdiction=match["jurisdiction"],
                locale=match["locale"],
                version=int(match["version"]),
                text=text,
                sha256=text_sha256(text),
            )
        )
    if not documents:
        raise DocumentLoadError(f"no consent texts in {directory}")
    return documents


def load_documents(directory: Path | None = None) -> LoadResult:
    """Publishes new versions; idempotent; all-or-nothing; never alters a published text."""
    files = read_document_files(directory or TEXTS_DIR)
    published = {
        (d.type, d.jurisdiction, d.locale, d.version): d
        for d in db.session.scalars(select(ConsentDocument))
    }
    result = LoadResult()
    altered = []
    new = []
    for doc in files:
        existing = published.get((doc.type, doc.jurisdiction, doc.locale, doc.version))
        if existing is None:
            new.append(doc)
        elif existing.sha256 == doc.sha256:
            result.unchanged += 1
        else:
            altered.append(doc.name)
    if altered:
        raise DocumentLoadError(
            "published consent texts are immutable, but these files differ from their "
            f"published version: {', '.join(altered)}. Restore them and save the change "
            "as a new file with the next version number (e.g. .v2.md)."
        )
    now = utcnow()
    for doc in new:
        db.session.add(
            ConsentDocument(
                type=doc.type,
                jurisdiction=doc.jurisdiction,
                locale=doc.locale,
                version=doc.version,
                text=doc.text,
                sha256=doc.sha256,
                published_at=now,
            )
        )
        result.published.append(doc.name)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise DocumentLoadError("another loader published at the same time; run again") from None
    return result


def current_documents(
    consent_type: str | None = None,
    jurisdiction: str | None = None,
    locale: str = DEFAULT_LOCALE,
) -> list[ConsentDocument]:
    """The latest version per (type, jurisdiction) in `locale`."""
    doc = ConsentDocument
    filters = [doc.locale == locale]
    if consent_type:
        filters.append(doc.type == consent_type)
    if jurisdiction:
        filters.append(doc.jurisdiction == jurisdiction)
    latest = (
        select(doc.type, doc.jurisdiction, func.max(doc.version).label("version"))
        .where(*filters)
        .group_by(doc.type, doc.jurisdiction)
        .subquery()
    )
    stmt = (
        select(doc)
        .join(
            latest,
            and_(
                doc.type == latest.c.type,
                doc.jurisdiction == latest.c.jurisdiction,
                doc.version == latest.c.version,
            ),
        )
        .where(doc.locale == locale)
        .order_by(doc.type, doc.jurisdiction)
    )
    return list(db.session.scalars(stmt))


def current_document(consent_type: str, jurisdiction: str, locale: str) -> ConsentDocument | None:
    found = current_documents(consent_type, jurisdiction, locale)
    return found[0] if found else None
