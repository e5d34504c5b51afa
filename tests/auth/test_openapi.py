from __future__ import annotations

ENDPOINTS = {
    "/api/v1/auth/register": {"post"},
    "/api/v1/auth/login": {"post"},
    "/api/v1/auth/refresh": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/auth/logout-all": {"post"},
    "/api/v1/auth/sessions": {"get"},
    "/api/v1/auth/sessions/{session_id}": {"delete"},
    "/api/v1/auth/me": {"get", "patch"},
    "/api/v1/auth/password": {"post"},
    "/api/v1/auth/verify-email/request": {"post"},
    "/api/v1/auth/verify-email": {"post"},
    "/api/v1/auth/password-reset/request": {"post"},
    "/api/v1/auth/password-reset": {"post"},
}
PUBLIC = {
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/verify-email",
    "/api/v1/auth/password-reset/request",
    "/api/v1/auth/password-reset",
}


def test_every_auth_operation_is_documented_with_its_errors(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, methods in ENDPOINTS.items():
        assert set(spec["paths"][path]) >= methods, path
        for method in methods:
            operation = spec["paths"][path][method]
            assert operation["summary"], (path, method)
            responses = operation["responses"]
            if path in PUBLIC:
                assert "security" not in operation, path
            else:
                assert operation["security"] == [{"bearerAuth": []}], path
                assert "token_revoked" in responses["401"]["description"], path
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert "application/problem+json" in response["content"], (path, status)

    login = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"200", "401", "403", "422", "429"} <= set(login)
    assert "invalid_credentials" in login["401"]["description"]
    assert "account_disabled" in login["403"]["description"]
    assert "Retry-After" in login["429"]["headers"]
    register = spec["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert "email_taken" in register["409"]["description"]
    assert "201" in register
    refresh = spec["paths"]["/api/v1/auth/refresh"]["post"]["responses"]
    assert "token_reused" in refresh["401"]["description"]
    # No request schema offers the fields a client must never set.
    for name in ("Credentials", "MePatchByPassword", "MePatchByIdToken"):
        assert not {"is_verified", "is_active", "id"} & set(
            spec["components"]["schemas"][name]["properties"]
        )
