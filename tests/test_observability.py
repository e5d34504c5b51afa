"""JSON log lines with the request id, and Prometheus metrics by route template."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from flask import Flask, request
from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client.parser import text_string_to_metric_families

from irisvue import observability
from tests.support.metrics import requests_total, scrape

REPO = Path(__file__).resolve().parent.parent
ROUTE = "/_probe/things/<uuid:thing_id>"


def probe_blueprint() -> Blueprint:
    blp = Blueprint("probe", __name__, url_prefix="/_probe")
    log = structlog.get_logger("tests.probe")

    @blp.route("/things/<uuid:thing_id>")
    class Thing(MethodView):
        def get(self, thing_id):
            """Log a client-controlled header, then answer."""
            log.warning("probe_seen", user_agent=request.headers.get("User-Agent"))
            return {"id": str(thing_id)}

    return blp


@pytest.fixture
def probe(app: Flask):
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    api.register_blueprint(probe_blueprint())
    return app.test_client()


@pytest.fixture
def log_lines(app: Flask) -> Iterator[callable]:
    """The app's real logging pipeline, writing into a buffer instead of stdout."""
    buffer = io.StringIO()
    observability.configure_logging("INFO", stream=buffer)

    def read() -> list[str]:
        return buffer.getvalue().splitlines()

    yield read
    observability.configure_logging(app.config["LOG_LEVEL"])


def test_log_lines_are_json_with_request_id(probe, log_lines):
    thing = uuid.uuid4()
    response = probe.get(f"/_probe/things/{thing}", headers={"X-Request-ID": "trace-7"})
    assert response.status_code == 200
    logging.getLogger("werkzeug").warning("stdlib logger line")  # third-party loggers too
    lines = log_lines()
    records = [json.loads(line) for line in lines]  # every line is one JSON document
    seen = [r for r in records if r["event"] == "probe_seen"]
    assert len(seen) == 1
    assert seen[0]["request_id"] == "trace-7"
    assert seen[0]["level"] == "warning"
    assert seen[0]["timestamp"].endswith("Z")
    stdlib = [r for r in records if r["event"] == "stdlib logger line"]
    assert stdlib and stdlib[0]["logger"] == "werkzeug"


def test_crlf_in_a_header_is_refused_and_logs_stay_one_line(probe, log_lines):
    # CR/LF/NUL are never valid in a header (RFC 9110): the request guard refuses
    # them before any view can log or store the value.
    hostile = 'curl\r\n{"event": "forged", "request_id": "admin"}\nx'
    response = probe.get(
        f"/_probe/things/{uuid.uuid4()}", environ_overrides={"HTTP_USER_AGENT": hostile}
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_header"
    records = [json.loads(line) for line in log_lines()]
    assert "probe_seen" not in [r["event"] for r in records]
    # Whatever a header may legally hold still cannot forge a line: the JSON
    # renderer escapes the terminal escape sequence and the Unicode separators.
    legal = "curl \x1b[2J\x1b[31mALERT\u2028\u2029\x85 ok"
    response = probe.get(
        f"/_probe/things/{uuid.uuid4()}", environ_overrides={"HTTP_USER_AGENT": legal}
    )
    assert response.status_code == 200
    lines = log_lines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["probe_seen"]
    assert records[0]["user_agent"] == legal  # kept verbatim, escaped by JSON
    assert len(lines) == 1 and lines[0].isascii() and "\x1b" not in lines[0]


def test_metrics_count_by_route_template_without_ids(probe):
    before = scrape(probe)
    ids = [uuid.uuid4() for _ in range(3)]
    for thing in ids:
        assert probe.get(f"/_probe/things/{thing}").status_code == 200
    missing = uuid.uuid4()
    assert probe.get(f"/no/such/{missing}").status_code == 404
    assert probe.open("/health", method="BREW").status_code == 405

    text = probe.get("/metrics").get_data(as_text=True)
    after = scrape(probe)
    assert requests_total(after, "GET", ROUTE, "200") - requests_total(
        before, "GET", ROUTE, "200"
    ) == pytest.approx(3)
    assert requests_total(after, "GET", "<unmatched>", "404") >= 1
    assert requests_total(after, "OTHER", "<unmatched>", "405") >= 1
    for thing in [*ids, missing]:
        assert str(thing) not in text
    assert "BREW" not in text
    # Scrapes are not counted as traffic.
    assert not [key for key in after if ("route", "/metrics") in key[1]]
    latency = ("irisvue_http_request_duration_seconds_count", (("method", "GET"), ("route", ROUTE)))
    assert after[latency] >= 3


SCRIPT = """
import sys
from irisvue import create_app
client = create_app().test_client()
for _ in range(int(sys.argv[1])):
    assert client.get("/health").status_code == 200
if sys.argv[2] == "scrape":
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


@pytest.mark.slow
def test_metrics_aggregate_worker_processes_in_multiprocess_mode(tmp_path):
    """gunicorn workers are separate processes; /metrics in any one must count all."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "PYTHON_DOTENV_DISABLED": "1",
        "IRISVUE_INSTANCE_PATH": str(tmp_path / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "WARNING",
    }

    def run(hits: int, mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(hits), mode],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(3, "quiet")
    run(2, "quiet")
    text = run(0, "scrape")
    totals = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "irisvue_http_requests_total" and sample.labels.get("route") == "/health"
    ]
    assert sum(totals) == 5, text
