"""compose.yaml, Procfile, Dockerfile, .dockerignore and .env.example, read as files.

Docker's engine does not run here, so compose.yaml is parsed and its one
shell script is executed against a stub `mc`; the processes themselves run
for real in test_processes.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "db",
    "redis",
    "minio",
    "minio-init",
    "mailpit",
    "migrate",
    "web",
    "worker",
    "dashboard",
}
ONE_SHOT = {"minio-init", "migrate"}
# Environment names whose values are secrets: never literal in compose.yaml.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|_KEY$|_KEYS$|^MASTER_KEYS$|^DATABASE_URL$|REDIS_URL$)")
INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _depends(service: dict) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def test_compose_names_every_service(compose):
    assert set(compose["services"]) == SERVICES


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_app_services_wait_for_healthy_dependencies_and_migrations(compose):
    services = compose["services"]
    for name in ("web", "worker"):
        depends = _depends(services[name])
        for dependency in ("db", "redis", "minio"):
            assert depends.get(dependency) == "service_healthy", (name, dependency)
        assert depends.get("migrate") == "service_completed_successfully", name
        assert depends.get("minio-init") == "service_completed_successfully", name
    assert _depends(services["migrate"]) == {"db": "service_healthy"}
    assert _depends(services["minio-init"]) == {"minio": "service_healthy"}


def test_app_services_run_the_right_commands_in_production_mode(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["flask", "--app", "wsgi", "release"]
    assert services["web"]["command"][:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert services["web"]["command"][-1] == "wsgi:app"
    assert services["worker"]["command"] == ["python", "worker.py"]
    for name in ("migrate", "web", "worker"):
        service = services[name]
        assert service["build"] == ".", name
        env = _environment(service)
        assert env["IRISVUE_ENV"] == "production", name
        assert env["S3_SSE"] == "s3", name
        assert env["DATABASE_URL"].startswith("postgresql+psycopg2://"), name
        assert "@db:5432/" in env["DATABASE_URL"], name
        assert "@redis:6379/" in env["REDIS_URL"], name
        assert env["S3_ENDPOINT"] == "minio:9000", name
        assert env["SMTP_HOST"] == "mailpit", name
    # Inside a container the server must listen beyond loopback.
    assert _environment(services["web"])["BIND"] == "0.0.0.0:8000"
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    assert "python" in web_check and "/health/ready" in web_check
    assert "dashboard" in compose["services"]
    assert "rq-dashboard" in services["dashboard"]["image"]


def test_minio_has_a_kms_key_so_sse_s3_works(compose):
    env = _environment(compose["services"]["minio"])
    assert INTERPOLATION.fullmatch(env["MINIO_KMS_SECRET_KEY"])
    assert env["MINIO_KMS_SECRET_KEY"].startswith("${MINIO_KMS_SECRET_KEY:?")


def test_no_literal_secret_in_compose(compose):
    checked = 0
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if not SECRET_NAME.search(key):
                continue
            checked += 1
            found = INTERPOLATION.findall(value)
            assert found, f"{name}.{key} holds a literal value"
            # A secret is required (`:?`), never defaulted (`:-`) to something guessable.
            for match in re.finditer(r"\$\{([A-Z0-9_]+)(:?[-?])", value):
                if SECRET_NAME.search(match.group(1)):
                    assert match.group(2) == ":?", f"{name}.{key} has a default secret"
    assert checked >= 15
    text = (ROOT / "compose.yaml").read_text()
    assert "minioadmin" not in text and "changeme" not in text.lower()


def test_published_ports_bind_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_every_compose_variable_is_documented(compose):
    text = (ROOT / "compose.yaml").read_text()
    used = set(INTERPOLATION.findall(text.replace("$$", "")))
    documented = _documented_variables()
    assert used, "compose.yaml interpolates nothing"
    assert used <= documented, sorted(used - documented)


def test_minio_init_script_runs_against_a_stub_mc(compose, tmp_path):
    """The one-shot script is valid sh, calls mc in order and writes a valid policy."""
    script = compose["services"]["minio-init"]["entrypoint"]
    assert script[:2] == ["/bin/sh", "-ec"]
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "mc"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    stub.chmod(0o755)
    env = {
        "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "MINIO_ROOT_USER": "root-user",
        "MINIO_ROOT_PASSWORD": "root-password",
        "S3_BUCKET_NAME": "irisvue-bucket",
        "S3_ACCESS_KEY": "app-user",
        "S3_SECRET_KEY": "app-secret",
    }
    # compose turns `$$` into `$` before the shell sees the script.
    result = subprocess.run(
        ["/bin/sh", "-ec", script[2].replace("$$", "$")],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert lines[0] == "alias set local http://minio:9000 root-user root-password"
    assert "mb --ignore-existing local/irisvue-bucket" in lines
    assert "encrypt set sse-s3 local/irisvue-bucket" in lines
    assert "admin user add local app-user app-secret" in lines
    assert lines[-1] == "admin policy attach local irisvue-app --user app-user"
    policy = json.loads((tmp_path / "irisvue-policy.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {"arn:aws:s3:::irisvue-bucket", "arn:aws:s3:::irisvue-bucket/*"}
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert not any(a.startswith("s3:*") or a.startswith("admin:") for a in actions)


def _procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_has_web_worker_and_release_migration():
    entries = _procfile()
    assert set(entries) == {"web", "worker", "release"}
    assert entries["web"] == "gunicorn --config gunicorn.conf.py wsgi:app"
    assert entries["worker"] == "python worker.py"
    assert entries["release"] == "flask --app wsgi release"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_and_runs_as_non_root():
    instructions = _dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(re.search(r"\sAS\s+\w+", stage, re.IGNORECASE) for stage in stages)
    assert any(keyword == "COPY" and rest.startswith("--from=") for keyword, rest in instructions)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "no USER instruction"
    final_user = users[-1].split(":")[0]
    assert final_user not in {"root", "0"}
    # The USER comes after the last FROM, so it applies to the runtime image.
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    assert max(i for i, (k, _) in enumerate(instructions) if k == "USER") > last_from
    assert ("EXPOSE", "8000") in instructions
    cmd = next(rest for keyword, rest in reversed(instructions) if keyword == "CMD")
    assert json.loads(cmd) == ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
    assert any(k == "RUN" and "requirements.lock" in rest for k, rest in instructions)


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored():
    ignored = {p.rstrip("/") for p in _dockerignore_patterns() if not p.startswith("!")}
    for keyword, rest in _dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from="):
            continue
        sources = [part for part in rest.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: missing"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_local_state_out():
    patterns = set(_dockerignore_patterns())
    for needed in (".env", ".git", ".venv", "instance", "*.egg-info"):
        assert needed in patterns, needed
    assert "!.env.example" in patterns


def _documented_variables() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


ENV_READ = re.compile(
    r"""\w*env\w*(?:\.get)?\s*[\(\[]\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|_[a-z]+\(\s*env\s*,\s*["']([A-Z][A-Z0-9_]+)["']"""
)


# Keys of a WSGI environ (`environ.get("PATH_INFO")`), not process environment variables.
WSGI_KEYS = re.compile(
    r"^(HTTP_\w+|PATH_INFO|QUERY_STRING|RAW_URI|REMOTE_ADDR|REMOTE_PORT|REQUEST_METHOD"
    r"|SCRIPT_NAME|SERVER_NAME|SERVER_PORT|SERVER_PROTOCOL|CONTENT_TYPE|CONTENT_LENGTH)$"
)


def _variables_read_by_code() -> set[str]:
    files = [ROOT / "wsgi.py", ROOT / "worker.py", ROOT / "gunicorn.conf.py"]
    files += sorted((ROOT / "irisvue").rglob("*.py"))
    names = set()
    for path in files:
        if path.exists():
            for match in ENV_READ.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    return {name for name in names if not WSGI_KEYS.match(name)}


def test_env_example_lists_every_variable_the_code_reads():
    read = _variables_read_by_code()
    assert {"DATABASE_URL", "SECRET_KEY", "MASTER_KEYS", "WEB_CONCURRENCY"} <= read
    missing = read - _documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


class _RecordingEnviron(dict):
    """os.environ's stand-in that notes which names our package's code asks for."""

    def __init__(self, data: dict[str, str]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def _note(self, name: object) -> None:
        caller = sys._getframe(2).f_code.co_filename
        if isinstance(name, str) and caller.startswith(str(ROOT / "irisvue")):
            self.read.add(name)

    def get(self, name, default=None):
        self._note(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self._note(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self._note(name)
        return super().__contains__(name)


def test_env_example_lists_every_variable_the_app_reads_at_startup(stack_env, monkeypatch):
    """Catches settings read in loops (`os.environ.get(name)`) that no grep sees."""
    from irisvue import create_app

    recorder = _RecordingEnviron(dict(os.environ))
    monkeypatch.setattr(os, "environ", recorder)
    create_app()
    assert {"DATABASE_URL", "SECRET_KEY", "IRISVUE_INSTANCE_PATH"} <= recorder.read
    missing = recorder.read - _documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_sets_nothing_by_default():
    """Copied as is, it must leave the embedded development stack in place."""
    for line in (ROOT / ".env.example").read_text().splitlines():
        assert not line.strip() or line.startswith("#"), line
