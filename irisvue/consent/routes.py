from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from irisvue.api import ApiBlueprint, current_user_id
from irisvue.consent import anchor, services
from irisvue.consent.documents import current_documents
from irisvue.consent.jurisdiction import Suggestion, suggest
from irisvue.consent.schemas import (
    ConsentCreateSchema,
    ConsentDocumentListSchema,
    ConsentReceiptSchema,
    ConsentStateListSchema,
    DocumentQueryArgsSchema,
    HistoryQueryArgsSchema,
    HistorySchema,
    JurisdictionSuggestionSchema,
    WithdrawSchema,
)
from irisvue.jobs.schemas import job_links

blp = ApiBlueprint(
    "consent",
    __name__,
    url_prefix="/api/v1/consents",
    description="Consent texts and the user's append-only, hash-chained consent ledger.",
)
DOCUMENTS_CACHE = "public, max-age=300"  # a stale copy only costs the client a 409 and a refetch
_TYPE_PATH = "<any(biometric_capture, data_processing, marketing):consent_type>"


def _client() -> dict[str, str | None]:
    # remote_addr already went through ProxyFix: only TRUSTED_PROXIES hops count.
    return {"ip_address": request.remote_addr, "user_agent": request.user_agent.string or None}


@blp.after_request
def _cache_headers(response: Response) -> Response:
    if request.endpoint == "consent.ConsentDocumentViews" and response.status_code == 200:
        response.headers["Cache-Control"] = DOCUMENTS_CACHE
    else:
        response.headers["Cache-Control"] = "no-store"  # the ledger is personal data
    return response


@blp.route("/documents")
class ConsentDocumentViews(MethodView):
    @blp.arguments(DocumentQueryArgsSchema, location="query")
    @blp.response(200, ConsentDocumentListSchema)
    @blp.doc(operationId="listConsentDocuments")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The current consent texts: the latest version per type and jurisdiction (no auth)."""
        documents = current_documents(args.get("type"), args.get("jurisdiction"), args["locale"])
        return {"items": documents}


@blp.route("/jurisdiction")
class JurisdictionViews(MethodView):
    @blp.doc(operationId="getJurisdiction")
    @blp.response(200, JurisdictionSuggestionSchema)
    def get(self) -> Suggestion:
        """The jurisdiction whose consent texts this client should see, from its IP (no auth)."""
        # Looked up, never stored or logged; `_cache_headers` makes it no-store.
        return suggest(request.remote_addr)


@blp.route("/")
class ConsentViews(MethodView):
    @blp.authenticated()
    @blp.response(200, ConsentStateListSchema)
    @blp.doc(operationId="getConsentState")
    def get(self) -> dict[str, Any]:
        """The user's current consent per type: the latest record wins."""
        return {"items": services.current_state(current_user_id())}

    @blp.authenticated()
    @blp.doc(
        operationId="recordConsent",
        responses={202: {"links": job_links("$response.body#/job/id")}},
    )
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, ConsentReceiptSchema, description="The appended record")
    @blp.alt_response(
        202,
        schema=ConsentReceiptSchema,
        success=True,
        description="A refusal of biometric_capture: the record, and `job`, the queued "
        "destruction of the user's biometric data",
    )
    @blp.problem(409, "`stale_document`: document_version is not the current text")
    @blp.problem(422, "Unknown field, consent type, jurisdiction or locale")
    def post(self, data: dict[str, Any]) -> tuple[services.ConsentReceipt, int]:
        """Append a consent decision for the current text of a consent type."""
        receipt = services.record_consent(current_user_id(), **data, **_client())
        return receipt, 202 if receipt.job else 201


@blp.route(f"/{_TYPE_PATH}/withdraw")
class ConsentWithdrawViews(MethodView):
    @blp.authenticated()
    @blp.doc(
        operationId="withdrawConsent",
        responses={202: {"links": job_links("$response.body#/job/id")}},
    )
    @blp.arguments(WithdrawSchema, required=False)
    @blp.response(
        202,
        ConsentReceiptSchema,
        description="biometric_capture: the withdrawal record and `job`, the queued "
        "destruction of every biometric object of the user",
    )
    @blp.alt_response(
        201, schema=ConsentReceiptSchema, success=True, description="The withdrawal record"
    )
    @blp.problem(422, "Unknown field or jurisdiction, or no jurisdiction to infer")
    def post(self, data: dict[str, Any], consent_type: str) -> tuple[services.ConsentReceipt, int]:
        """Withdraw a consent (one call); withdrawing biometric_capture destroys biometric data."""
        receipt = services.withdraw_consent(
            current_user_id(), consent_type, jurisdiction=data.get("jurisdiction"), **_client()
        )
        return receipt, 202 if receipt.job else 201


@blp.route("/history")
class ConsentHistoryViews(MethodView):
    @blp.authenticated()
    @blp.arguments(HistoryQueryArgsSchema, location="query")
    @blp.response(200, HistorySchema)
    @blp.doc(operationId="getConsentHistory")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every record of the user, oldest first, paginated; `verify=true` checks the chain."""
        user_id = current_user_id()
        items, next_after = services.history(
            user_id, limit=args["limit"], after_seq=args.get("cursor", 0)
        )
        body: dict[str, Any] = {"items": items, "next_cursor": next_after}
        if args["verify"]:
            body["verification"] = anchor.verify(user_id).as_dict()
        return body
