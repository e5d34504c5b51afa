"""Consent fixtures: a signed-in member who has not consented to anything yet."""

from __future__ import annotations

import pytest


@pytest.fixture
def member(signed_in):
    """A user with bearer headers and no consent; the consent texts are published."""
    return signed_in(consent=False)
