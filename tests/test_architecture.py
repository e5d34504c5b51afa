"""The wiring holds its shape: no import cycles, infrastructure never imports a
feature, features depend on each other in one direction, one list of features.

Imports are read from the source (also those inside functions), so a lazy
import cannot hide a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "irisvue"
# Features, lowest first: a feature may import only features before it.
FEATURE_ORDER = ("health", "auth", "consent", "captures", "privacy")
# Operations anyone may call without a bearer token.
PUBLIC_OPERATIONS = {
    ("get", "/"),
    ("get", "/health"),
    ("get", "/health/ready"),
    ("get", "/health/db"),
    ("get", "/health/redis"),
    ("get", "/health/storage"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/verify-email"),
    ("post", "/api/v1/auth/password-reset/request"),
    ("post", "/api/v1/auth/password-reset"),
    ("post", "/api/v1/auth/nonce"),
    ("post", "/api/v1/auth/id-token"),
    ("post", "/api/v1/auth/providers/apple/notifications"),
    ("get", "/api/v1/consents/documents"),
    ("get", "/api/v1/consents/jurisdiction"),
    ("get", "/api/v1/privacy/export/{job_id}/download"),
    ("get", "/api/v1/privacy/erasure/{receipt_id}"),
}


def module_files(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Module name → (file, is a package __init__)."""
    found = {}
    for path in (root / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the modules of the package it imports, anywhere in its body."""
    modules = module_files(root)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(resolve(a.name) for a in node.names if a.name.startswith(PACKAGE))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    base = ".".join([*here, base] if base else here)
                if base.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(resolve(full) if full in modules else resolve(base))
        targets.discard(None)
        targets.discard(name)
        graph[name] = {t for t in targets if t is not None}
    return graph


def _own_package_edge(source: str, target: str) -> bool:
    # A package __init__ and its own submodules may import each other.
    return target.startswith(f"{source}.") or source.startswith(f"{target}.")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    edges = {m: {t for t in ts if not _own_package_edge(m, t)} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FEATURE_ORDER else None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for source, targets in sorted(graph.items()):
        source_feature = feature_of(source)
        for target in sorted(targets):
            target_feature = feature_of(target)
            if target_feature is None or target_feature == source_feature:
                continue
            if source_feature is None:
                if source != PACKAGE:  # the app factory lists the features
                    problems.append(f"infrastructure {source} imports feature {target}")
            elif FEATURE_ORDER.index(target_feature) > FEATURE_ORDER.index(source_feature):
                problems.append(f"{source} imports the higher feature {target}")
    return problems


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_infrastructure_never_imports_a_feature_and_features_go_one_way() -> None:
    assert layer_violations(import_graph()) == []


def test_the_checks_can_fail() -> None:
    graph = {
        "irisvue.jobs.outbox": {"irisvue.consent.services"},
        "irisvue.consent.services": {"irisvue.captures.services", "irisvue.consent"},
        "irisvue.consent": {"irisvue.consent.services"},
        "irisvue.captures.services": {"irisvue.jobs.outbox"},
    }
    assert cycles(graph) == [
        ["irisvue.captures.services", "irisvue.consent.services", "irisvue.jobs.outbox"]
    ]
    assert layer_violations(graph) == [
        "irisvue.consent.services imports the higher feature irisvue.captures.services",
        "infrastructure irisvue.jobs.outbox imports feature irisvue.consent.services",
    ]


def test_features_are_listed_once() -> None:
    import irisvue

    names = [feature.__name__.rpartition(".")[2] for feature in irisvue.FEATURES]
    assert set(FEATURE_ORDER) <= set(names)
    # No other module keeps a list of features (the old HANDLER_MODULES/MODULES).
    for path, _ in module_files().values():
        text = path.read_text()
        if path.name == "__init__.py" and path.parent.name == PACKAGE:
            continue
        listed = [f'"{PACKAGE}.{name}' for name in FEATURE_ORDER if f'"{PACKAGE}.{name}' in text]
        assert len(listed) < 2, f"{path} lists features: {listed}"


def test_no_module_over_300_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path, _ in module_files().values()
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert long == {}


def test_every_private_operation_requires_a_bearer_token(app) -> None:
    spec = app.test_client().get("/api/openapi.json").get_json()
    unguarded = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            secured = operation.get("security") == [{"bearerAuth": []}]
            if secured:
                assert "401" in operation["responses"], (method, path)
            elif (method, path) not in PUBLIC_OPERATIONS:
                unguarded.append((method, path))
    assert unguarded == []


def test_every_secured_operation_answers_401_without_a_token(app) -> None:
    """What the document says is what the server does: no secured route forgot its check."""
    client = app.test_client()
    spec = client.get("/api/openapi.json").get_json()
    values = {"consent_type": "marketing"}
    answered = {}
    for path, operations in spec["paths"].items():
        url = re.sub(
            r"{(\w+)}",
            lambda m: values.get(m.group(1), "00000000-0000-4000-8000-000000000000"),
            path,
        )
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue  # path-level `parameters`
            if operation.get("security") != [{"bearerAuth": []}]:
                continue
            response = client.open(url, method=method.upper(), json={})
            answered[(method, path)] = (response.status_code, response.get_json()["code"])
    assert answered and set(answered.values()) == {(401, "token_missing")}, answered
