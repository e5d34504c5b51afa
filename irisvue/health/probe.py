"""The liveness probe answered below Flask.

Load balancers and orchestrators send `GET /health` every few seconds to every
instance, and SPEC §7 holds it to 0.9x a bare Flask route. Its answer never
changes, so the routing, hooks and response object Flask would build for it
are pure overhead. This WSGI layer answers a plain `GET`/`HEAD` of `/` or
`/health` itself, doing what the app's hooks would have done for it: the
`X-Request-ID` header (echoed or new), the request counted and timed in the
Prometheus metrics under its route, and the same body and headers as the
documented view (`LivenessViews`, which stays the answer for anything else).

Anything unusual falls through to Flask, which answers it as before: another
method (405), a query string (checked for NUL), a header value with NUL, CR or
LF (400). gunicorn's access log line is written for both paths alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from irisvue.guards import headers_clean
from irisvue.observability import REQUEST_ID_HEADER, count_request, request_id_for

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LivenessProbe:
    """WSGI middleware answering a plain GET/HEAD of any of `paths` with `body`.

    A path is also its metrics label: the routes are static, so the path is
    the rule template observability labels every other request with.
    """

    def __init__(self, app: WSGIApp, paths: Iterable[str], body: bytes) -> None:
        self.app = app
        self._paths = frozenset(paths)
        self._body = body
        self._length = str(len(body))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if (
            path not in self._paths
            or method not in ("GET", "HEAD")
            or environ.get("QUERY_STRING")
            or not headers_clean(environ)
        ):
            return self.app(environ, start_response)
        started = time.perf_counter()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", self._length),
                (REQUEST_ID_HEADER, request_id_for(environ)),
            ],
        )
        count_request(method, path, "200", time.perf_counter() - started)
        return [self._body if method == "GET" else b""]
