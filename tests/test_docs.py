"""OpenAPI document and Swagger UI, browsable with no internet access."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.support.servers import serve_in_thread

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
# A name that is not "localhost": Swagger UI only skips its online validator
# badge (a request to validator.swagger.io) for local URLs.
DOCS_HOST = "docs.irisvue.test"
SITE = "http://irisvue.test"


class _Collector(HTMLParser):
    """Collects asset URLs and the text of elements whose class contains `title`."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.titles: list[str] = []
        self._depth = 0  # >0 while inside a `.title` element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(values[name])  # type: ignore[arg-type]
        if self._depth:
            self._depth += 1
        elif "title" in (values.get("class") or "").split():
            self._depth = 1
            self.titles.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.titles[-1] += data


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def test_openapi_document(client, app):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == app.config["API_TITLE"] == "IrisVue"
    assert "/health/ready" in spec["paths"]
    # The asset route is plumbing, not API.
    assert not any(path.startswith("/api/docs") for path in spec["paths"])


def test_docs_page_references_only_served_local_assets(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    urls = parse(html).urls
    assert len(urls) >= 3, urls  # the stylesheet and both scripts
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} would leave the machine"
        with client.get(url) as asset:
            assert asset.status_code == 200, url
            assert len(asset.data) > 1000, url
    assert "https://" not in html and "http://" not in html


def test_asset_route_serves_swagger_ui_and_nothing_else(client):
    with client.get("/api/docs/assets/swagger-ui-bundle.js") as js:
        assert js.status_code == 200
        assert js.mimetype in {"text/javascript", "application/javascript"}
        assert b"SwaggerUIBundle" in js.data
    with client.get("/api/docs/assets/swagger-ui.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"
    for path in ("missing.js", "../__init__.py", "..%2F__init__.py", "%2e%2e/flask_swagger_ui.py"):
        response = client.get(f"/api/docs/assets/{path}")
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/problem+json"


@pytest.fixture
def threaded_server(app: Flask) -> Iterator[int]:
    """The app on a real HTTP server on 127.0.0.1 (a thread of this process); its port."""
    with serve_in_thread(app) as port:
        yield port


def _netlog(netlog: Path) -> tuple[list[str], list[str]]:
    """From Chromium's net log: URLs the page requested, addresses Chromium connected to."""
    log = json.loads(netlog.read_text())
    names = {value: key for key, value in log["constants"]["logEventTypes"].items()}
    page_urls, addresses = [], []
    for event in log["events"]:
        params = event.get("params") or {}
        kind = names.get(event["type"])
        # The page's requests are keyed by its site; Chromium's own are not.
        if kind == "URL_REQUEST_START_JOB" and SITE in params.get("network_isolation_key", ""):
            page_urls.append(params["url"])
        elif kind == "TCP_CONNECT_ATTEMPT" and "address" in params:
            addresses.append(params["address"])
    return page_urls, addresses


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on this machine")
def test_swagger_ui_renders_offline_in_headless_chromium(app, threaded_server, tmp_path):
    netlog = tmp_path / "netlog.json"
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Every other name fails to resolve: nothing can leave the machine, and
        # the page must still render.
        f"--host-resolver-rules=MAP {DOCS_HOST} 127.0.0.1, MAP * ~NOTFOUND",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        f"http://{DOCS_HOST}:{threaded_server}/api/docs",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    page = parse(done.stdout)
    titles = [" ".join(text.split()) for text in page.titles]
    # Swagger UI's info block: "<API_TITLE> <version> OAS 3.0", rendered by its JS
    # from /api/openapi.json (the served HTML has no `.title` element at all).
    assert any(t.startswith(app.config["API_TITLE"]) and "OAS" in t for t in titles), titles
    assert "/health/ready" in done.stdout

    page_urls, addresses = _netlog(netlog)
    origin = f"http://{DOCS_HOST}:{threaded_server}"
    assert f"{origin}/api/openapi.json" in page_urls
    assert f"{origin}/api/docs/assets/swagger-ui-bundle.js" in page_urls
    # No CDN, no validator badge: the page asked only its own server.
    assert [u for u in page_urls if not u.startswith(f"{origin}/")] == []
    # And no connection at all went anywhere but the test server.
    assert addresses and set(addresses) == {f"127.0.0.1:{threaded_server}"}


def test_every_documented_error_is_problem_json(client):
    """The document says what the server sends: errors are application/problem+json."""
    spec = client.get("/api/openapi.json").get_json()
    for name, response in spec["components"]["responses"].items():
        assert list(response.get("content", {})) == ["application/problem+json"], name
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if status == "default" or status[0] in "45":
                    content = response.get("content")
                    assert content is None or list(content) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
