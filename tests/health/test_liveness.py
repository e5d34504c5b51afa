from openapi_schema_validator import OAS30Validator

from tests.support.metrics import requests_total, scrape


def test_liveness_touches_nothing_and_reports_version(client):
    for path in ("/", "/health"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.get_json()["status"] == "ok"
        assert response.get_json()["version"]


def test_readiness_ok_with_every_dependency_up(client):
    response = client.get("/health/ready")
    body = response.get_json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"db", "redis", "storage"}
    assert body["checks"]["db"]["backend"] == "postgresql"
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0


def _answer(response):
    headers = {k: v for k, v in response.headers.items() if k != "X-Request-ID"}
    return response.status_code, headers, response.get_data()


def test_the_probe_answers_below_flask_exactly_as_the_view_would(app, client):
    """health.probe answers plain GET/HEAD itself; anything else reaches Flask's view."""
    entered = []
    app.before_request(lambda: entered.append(1) and None)

    for path in ("/", "/health"):
        for method in ("GET", "HEAD"):
            fast = client.open(path, method=method)
            assert entered == [], (method, path)
            # A query string takes the request through Flask: the documented view.
            viewed = client.open(path + "?via=flask", method=method)
            assert entered == [1], (method, path)
            entered.clear()
            assert _answer(fast) == _answer(viewed)
            assert fast.headers["Content-Type"] == "application/json"
            assert len(fast.get_data()) == (
                0 if method == "HEAD" else int(fast.headers["Content-Length"])
            )


def test_the_probe_answers_what_the_openapi_document_promises(app, client):
    """The view and the probe share one constant, so comparing them proves nothing
    about the contract: the probe's own answer is checked against the served document."""
    entered = []
    app.before_request(lambda: entered.append(1) and None)
    document = client.get("/api/openapi.json").get_json()
    entered.clear()

    for path in ("/", "/health"):
        probed = client.get(path)
        assert (probed.status_code, entered) == (200, []), path  # the probe answered
        documented = document["paths"][path]["get"]["responses"]["200"]["content"]
        # A $ref resolves against the root it sits in: give the schema the components.
        schema = {**documented[probed.mimetype]["schema"], "components": document["components"]}
        OAS30Validator(schema).validate(probed.get_json())


def test_the_probe_sets_the_request_id_and_counts_the_request(client):
    echoed = client.get("/health", headers={"X-Request-ID": "lb-probe-7"})
    assert echoed.headers["X-Request-ID"] == "lb-probe-7"
    fresh = client.get("/health", headers={"X-Request-ID": "no spaces; allowed"})
    assert len(fresh.headers["X-Request-ID"]) == 32
    assert fresh.headers["X-Request-ID"] != client.get("/health").headers["X-Request-ID"]

    before = scrape(client)
    client.get("/health")
    client.get("/")
    client.head("/health")
    after = scrape(client)
    for method, route, count in (("GET", "/health", 1), ("GET", "/", 1), ("HEAD", "/health", 1)):
        gained = requests_total(after, method, route, "200") - requests_total(
            before, method, route, "200"
        )
        assert gained == count, (method, route)


def test_what_the_probe_does_not_answer_still_meets_the_guards(client):
    # The header guard's 400, the query guard's 400 and the 405 are Flask's, as before.
    bad_header = client.get("/health", headers={"User-Agent": "a\x00b"})
    assert bad_header.status_code == 400
    assert bad_header.get_json()["code"] == "invalid_header"
    assert client.get("/health?q=%00").get_json()["code"] == "invalid_query"
    assert client.post("/health").status_code == 405
    assert client.get("/health/").status_code in (308, 404)
