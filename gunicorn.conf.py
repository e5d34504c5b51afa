"""gunicorn settings for IrisVue: `gunicorn --config gunicorn.conf.py wsgi:app`.

Every value comes from the environment (defaults in brackets):

  BIND                     address(es) to listen on, comma-separated; wins over PORT
  PORT                     platform-assigned port: binds 0.0.0.0:$PORT (Procfile hosts)
                           [neither set: 127.0.0.1:8000, loopback only]
  WEB_CONCURRENCY          worker processes [usable CPU cores, at least 2]
  GUNICORN_THREADS         threads per worker (gthread) [3]
  GUNICORN_TIMEOUT         seconds before a silent worker is killed and replaced [30]
  GUNICORN_GRACEFUL_TIMEOUT seconds workers get to finish requests on shutdown [30]
  GUNICORN_KEEPALIVE       seconds an idle keep-alive connection stays open [5]
  GUNICORN_BODY_TIMEOUT    seconds a request's socket may stall (slow or stopped
                           upload, unread response) before it is given up, 0 = never [30]
  GUNICORN_MAX_REQUESTS    recycle a worker after this many requests, 0 = never [0]
  GUNICORN_REUSE_PORT      each worker listens on its own SO_REUSEPORT socket, so the
                           kernel spreads connections across workers; 0 = one shared
                           socket whose accepts the workers race for [1]
  GUNICORN_ACCESS_LOG      `-` (stdout), a file path, or `off` [-]
  LOG_LEVEL                gunicorn's own log level [INFO]
  PROMETHEUS_MULTIPROC_DIR where workers share metric files [a fresh temporary directory]

Access log lines are JSON with the path only: the query string, the Referer and
the Authorization header are never logged, because they can carry tokens.
Put secrets in headers or the body, never in a path segment.

gunicorn internals, version-fenced (pyproject bounds gunicorn below 27.1):
`glogging.Logger._set_handler` (JsonLogger) and `req.unreader.sock`
(pre_request); see tests/test_dependency_fences.py.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from typing import Any

from gunicorn import glogging

# The arbiter does not import irisvue: importing the package (Flask, SQLAlchemy,
# models) would cost it ~66 MB and ~1 s at start. Its few settings are read here,
# with the same rules as irisvue.settings.


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _env_bool(name: str, default: bool) -> bool:
    """As `irisvue.settings.env_bool`: unset or empty is the default, else 1/true/yes/on."""
    raw = os.environ.get(name, "").strip().lower()
    return raw in {"1", "true", "yes", "on"} if raw else default


def _usable_cores() -> int:
    # sched_getaffinity honours cpusets (docker --cpuset-cpus); cpu_count does not.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _bind() -> list[str]:
    if os.environ.get("BIND", "").strip():
        return [part.strip() for part in os.environ["BIND"].split(",") if part.strip()]
    if os.environ.get("PORT", "").strip():
        # A platform that assigns PORT routes outside traffic to it.
        return [f"0.0.0.0:{int(os.environ['PORT'])}"]
    return ["127.0.0.1:8000"]


bind = _bind()
# gthread: a Server-Sent Events stream holds one thread, not a whole process, so
# SSE clients coexist with normal traffic. Argon2 hashing is CPU-bound and
# releases the GIL, so workers ≈ cores keeps every core busy without oversubscribing.
worker_class = "gthread"
workers = _env_int("WEB_CONCURRENCY", max(2, _usable_cores()))
# Three threads keep a worker's core busy while others wait on PostgreSQL, S3 or
# a slow client; a fourth only adds GIL hand-offs: 3 against 4 on 2 cores gave
# GET /me +13% req/s [+11-21%] and -7% CPU per request (bench/ab.py, 3 rounds).
threads = _env_int("GUNICORN_THREADS", 3)
timeout = _env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

# Connection spreading. With one shared listening socket the workers race for
# each accept, and keep-alive connections stay with the winner: a burst of
# connections (a client's pool, a load balancer's keep-alive set) can land
# mostly on one worker, which then serves them alone on one core under its GIL
# while the other idles (issue 14: /me moved 2x between identical runs). With
# reuse_port, gunicorn (>= 27) gives every worker its own SO_REUSEPORT socket
# and the kernel hashes each new connection to one of them: an even spread
# whatever the workers are doing. The protections below (body timeout,
# keep-alive timeout, request-size limits) are per connection and unchanged.
reuse_port = _env_bool("GUNICORN_REUSE_PORT", True)

# Each worker builds its own app after the fork: no shared connection pools,
# and metrics are created after PROMETHEUS_MULTIPROC_DIR is set (see on_starting).
preload_app = False

# Request-size guards (gunicorn's defaults, stated so they are reviewed): a
# longer request line, more headers or a bigger header is refused before Flask runs.
# gunicorn answers those itself (414 / 431 / 400, `Connection: close`) with a
# small text/html page, not problem+json: no application code has run, and
# rewriting the answer would mean replacing gunicorn's error path. Kept on
# purpose; clients never meet it unless they send requests no client needs
# (tests/abuse/test_server.py pins the statuses).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# gthread waits at most 5 s for a request to start, but then reads the body
# with a blocking socket and no timeout: a client that sends a body slowly, or
# stops half-way without closing, would hold a thread for ever (and `timeout`
# does not help: the worker's heartbeat goes on). Every socket operation of a
# request (each body read, each response write) must progress within this many
# seconds; the app then answers 400 `incomplete_body` and cleans up.
_body_timeout = _env_int("GUNICORN_BODY_TIMEOUT", 30)


def pre_request(worker: Any, req: Any) -> None:
    worker.log.debug("%s %s", req.method, req.path)  # gunicorn's default hook
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None and _body_timeout > 0:
        sock.settimeout(_body_timeout)


# Heartbeat files on tmpfs: a slow disk must not make the arbiter kill workers.
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# gunicorn ≥ 25 opens a control socket at one fixed per-user path by default;
# an admin interface nobody asked for, and two servers on one host would collide.
control_socket_disable = True

proc_name = "irisvue"
loglevel = os.environ.get("LOG_LEVEL", "INFO").strip().lower() or "info"
errorlog = "-"
_access = os.environ.get("GUNICORN_ACCESS_LOG", "-").strip() or "-"
accesslog = None if _access.lower() in {"off", "none", "false", "0"} else _access


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, with the keys the app's structlog lines use."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "timestamp": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class JsonLogger(glogging.Logger):
    """gunicorn's logger with JSON error and access lines.

    The access line is built from the WSGI environ instead of
    `access_log_format`: gunicorn does not JSON-escape its atoms, so a crafted
    path (`%22`, `%0A`) could break or forge a line.
    """

    def _set_handler(self, log: logging.Logger, output: str | None, fmt: Any, stream: Any = None):
        super()._set_handler(log, output, _JsonFormatter(), stream=stream)

    def access(self, resp: Any, req: Any, environ: dict, request_time: _dt.timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        fields = {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),  # never QUERY_STRING: it may hold tokens
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "protocol": environ.get("SERVER_PROTOCOL"),
            "request_id": request_id,
            "pid": os.getpid(),
        }
        self.access_log.info("request", extra={"fields": fields})


logger_class = JsonLogger

# --- Prometheus multiprocess mode ------------------------------------------
# prometheus_client picks its value store when it is first imported, from
# PROMETHEUS_MULTIPROC_DIR. The arbiter sets it before forking any worker and
# imports prometheus_client only afterwards (in child_exit), so every worker,
# including replacements, writes to the shared directory and /metrics sums them.
_created_multiproc_dir: str | None = None
_MULTIPROC_PREFIX = "irisvue-prometheus-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_orphaned_multiproc_dirs(parent: str) -> None:
    # An arbiter killed with SIGKILL never runs on_exit; its directory is named
    # after its pid, so the next arbiter can tell it is orphaned.
    for name in os.listdir(parent):
        pid = name.removeprefix(_MULTIPROC_PREFIX).split("-", 1)[0]
        if name.startswith(_MULTIPROC_PREFIX) and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def on_starting(server: Any) -> None:
    global _created_multiproc_dir
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if path:
        os.makedirs(path, exist_ok=True)
        # Files of a previous run would be summed into this run's counters.
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    else:
        shm = "/dev/shm"  # noqa: S108 - tmpfs: metric writes never wait on a disk
        parent = shm if os.access(shm, os.W_OK) else tempfile.gettempdir()
        _sweep_orphaned_multiproc_dirs(parent)
        path = tempfile.mkdtemp(prefix=f"{_MULTIPROC_PREFIX}{os.getpid()}-", dir=parent)
        _created_multiproc_dir = path
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    server.log.info("prometheus multiprocess dir: %s", path)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _created_multiproc_dir:
        shutil.rmtree(_created_multiproc_dir, ignore_errors=True)


def post_fork(server: Any, worker: Any) -> None:
    # Large buffers (upload parts, encryption segments) go back to the kernel
    # when freed: see irisvue/memory.py.
    from irisvue.memory import tune_malloc

    tune_malloc()
