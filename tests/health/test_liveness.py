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
