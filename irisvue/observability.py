"""JSON logs with the request id, `X-Request-ID`, and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from typing import Any, TextIO

import structlog
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Labels are the route template (`/api/v1/jobs/<uuid:job_id>`), never the
# concrete path, so no id or personal datum becomes a label value.
# Werkzeug accepts any method token; unknown ones share one label value so a
# client cannot grow the number of series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUESTS = Counter("irisvue_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "irisvue_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on stdout (or `stream`); stdlib loggers (werkzeug, rq, alembic) too."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # JSON escapes CR/LF, so a hostile value cannot forge a log line.
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# Labelled children by label values: `Metric.labels()` takes a lock and builds
# tuples on every call; the label sets are few (route templates x methods x statuses).
_children: dict[tuple[str, ...], tuple[Any, Any]] = {}


def _metrics_for(method: str, route: str, status: str) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _children.get(key)
    if found is None:
        found = _children[key] = (
            REQUESTS.labels(method, route, status),
            LATENCY.labels(method, route),
        )
    return found


def _route_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def request_id_for(environ: dict[str, Any]) -> str:
    """The client's `X-Request-ID` if it is a safe token, else a fresh one."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def count_request(method: str, route: str, status: str, seconds: float | None) -> None:
    """One request in the metrics: its count by status, its latency by route."""
    requests, latency = _metrics_for(method if method in _METHODS else "OTHER", route, status)
    requests.inc()
    if seconds is not None:
        latency.observe(seconds)


def init_request_context(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = request_id_for(request.environ)
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        if request.endpoint != "metrics":
            started = g.get("started")
            count_request(
                request.method,
                _route_label(),
                str(response.status_code),
                None if started is None else time.perf_counter() - started,
            )
        return response


def metrics_view() -> Response:
    """Prometheus exposition; aggregates every gunicorn worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return Response(payload, content_type=CONTENT_TYPE_LATEST)


def init_metrics(app: Flask) -> None:
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
