"""Helpers for the consent tests: an authenticated user and a way to record consent."""

from __future__ import annotations

from typing import Any

import pytest
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


@pytest.fixture
def member(make_user, auth_headers, consent_documents):
    """A user with bearer headers; the consent texts are published."""
    user = make_user()
    return user, auth_headers(user)
