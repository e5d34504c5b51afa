"""CR/LF and escape sequences in an email or a header cannot forge or break a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from irisvue.observability import configure_logging
from tests.support.users import PASSWORD, fresh_ip

HOSTILE_EMAILS = [
    'a@example.com\r\n{"event": "forged", "level": "critical"}',
    "a@example.com\nBcc: victim@example.com",
    "a\r@example.com",
    "\x1b[2J\x1b[31mred@example.com",
    '"a\\"}{"event":"forged"}"@example.com',
    "a@example.com\u2028forged",
    "ünïcødé@exämple.com",  # refused too: the service accepts ASCII addresses only
]


@pytest.fixture
def log_lines(app) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    configure_logging(app.config["LOG_LEVEL"])


def test_hostile_emails_are_refused_before_they_reach_a_log(client, log_lines):
    for email in HOSTILE_EMAILS:
        for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
            response = client.post(
                path, json={"email": email, "password": PASSWORD}, environ_overrides=fresh_ip()
            )
            assert response.status_code == 422, response.get_data(as_text=True)
            assert set(response.get_json()["errors"]) == {"email"}
            # A refused address is not echoed back into the problem document.
            assert "forged" not in response.get_data(as_text=True)
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert "forged" not in [r.get("event") for r in records]


@pytest.mark.parametrize("value", [*HOSTILE_EMAILS, 'UA\r\n{"event":"forged"}', "\x00\x85"])
def test_any_logged_value_stays_one_ascii_json_line(app, log_lines, value):
    # Should a hostile value ever be logged (a new field, a stdlib logger), the
    # renderer keeps it on one line: CR, LF, ESC, U+2028 and NEL are escaped.
    with app.test_request_context("/", headers={"X-Request-ID": "abuse-1"}):
        app.preprocess_request()
        structlog.get_logger("tests.abuse").warning("probe", email=value, user_agent=value)
        logging.getLogger("tests.abuse.stdlib").warning("stdlib %s", value)
    lines = log_lines.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["probe", f"stdlib {value}"]
    assert records[0]["email"] == value and records[0]["request_id"] == "abuse-1"
    assert all(line.isascii() and "\x1b" not in line for line in lines)


def test_header_crlf_is_refused_before_anything_logs_or_stores_it(client, log_lines):
    hostile = 'curl\r\n{"event": "forged"}'
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "ua-crlf@example.com", "password": PASSWORD},
        environ_overrides={"HTTP_USER_AGENT": hostile, **fresh_ip()},
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_header"
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert "forged" not in [r.get("event") for r in records]
    # Nothing was created: the guard ran before the view.
    again = client.post(
        "/api/v1/auth/register",
        json={"email": "ua-crlf@example.com", "password": PASSWORD},
        environ_overrides=fresh_ip(),
    )
    assert again.status_code == 201
