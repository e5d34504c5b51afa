"""Recording consent through the API, and checking the ledger (API and CLI)."""

from __future__ import annotations

from typing import Any

from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

CONSENTS = "/api/v1/consents/"


def record(
    client: FlaskClient,
    headers: dict[str, str],
    consent_type: str = "data_processing",
    jurisdiction: str = "gdpr",
    *,
    granted: bool = True,
    version: int = 1,
    **extra: Any,
):
    body = {
        "consent_type": consent_type,
        "jurisdiction": jurisdiction,
        "granted": granted,
        "document_version": version,
        **extra,
    }
    return client.post(CONSENTS, json=body, headers=headers)


def verification(client: FlaskClient, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    """The ledger check of `GET /history?verify=true` (any page: it walks the whole chain)."""
    response = client.get(
        f"{CONSENTS}history", query_string={"verify": "true", **query}, headers=headers
    )
    assert response.status_code == 200
    return response.get_json()["verification"]


def cli_verification(app: Flask, user_id: object) -> Result:
    """`flask consent verify <user_id>`: the operator's ledger check of one user."""
    return app.test_cli_runner().invoke(args=["consent", "verify", str(user_id)])


def grant_biometric_consent(client: FlaskClient, headers: dict[str, str]) -> None:
    documents = client.get(
        f"{CONSENTS}documents", query_string={"type": "biometric_capture", "jurisdiction": "bipa"}
    ).get_json()["items"]
    response = client.post(
        CONSENTS,
        json={
            "consent_type": "biometric_capture",
            "jurisdiction": "bipa",
            "granted": True,
            "document_version": documents[0]["version"],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
