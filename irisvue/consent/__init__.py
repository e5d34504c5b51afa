from flask_smorest import Blueprint

blp = Blueprint(
    "consent",
    __name__,
    url_prefix="/api/v1/consents",
    description="Consent texts and the user's append-only, hash-chained consent ledger.",
)

from irisvue.consent import routes  # noqa: E402,F401
