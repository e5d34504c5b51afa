"""Every model, imported so Alembic's autogenerate sees the whole schema."""

from irisvue.models.audit import AuditEvent
from irisvue.models.capture import Capture
from irisvue.models.consent import ConsentDocument, ConsentHead, ConsentRecord
from irisvue.models.email_token import EmailToken
from irisvue.models.identity import AuthNonce, ProviderEvent, UserIdentity
from irisvue.models.job import Job
from irisvue.models.privacy import ErasureTombstone, PrivacyRequest
from irisvue.models.security_notice import SecurityNotice
from irisvue.models.session import Session
from irisvue.models.user import User
from irisvue.models.user_key import UserKey

__all__ = [
    "AuditEvent",
    "AuthNonce",
    "Capture",
    "ConsentDocument",
    "ConsentHead",
    "ConsentRecord",
    "EmailToken",
    "ErasureTombstone",
    "Job",
    "PrivacyRequest",
    "ProviderEvent",
    "SecurityNotice",
    "Session",
    "User",
    "UserIdentity",
    "UserKey",
]
