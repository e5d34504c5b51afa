"""Configuration: production refusals, the embedded default, shared dev secrets, CORS."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from irisvue import create_app
from irisvue.config import ConfigError, from_env, parse_origins
from tests.support.servers import gunicorn_conf

REPO = Path(__file__).resolve().parent.parent
# Every variable the app reads, so a subprocess starts from a known-empty config.
APP_VARIABLES = (
    "IRISVUE_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET_NAME",
    "S3_SECURE",
    "S3_REGION",
    "S3_SSE",
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "MASTER_KEYS",
    "CORS_ORIGINS",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_STARTTLS",
    "SMTP_SSL",
    "MAIL_FROM",
    "RATELIMIT_ENABLED",
    "ALLOW_INSECURE_TRANSPORT",
)


def clean_env(instance: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHON_DOTENV_DISABLED": "1",  # a developer's .env must not fill the gaps
            "IRISVUE_INSTANCE_PATH": str(instance),
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(settings)
    return env


@pytest.fixture
def production_env(stack, tmp_path) -> dict[str, str]:
    """A complete production configuration pointing at the run's real stack."""
    return {
        "IRISVUE_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "MASTER_KEYS": f"prod1:{secrets.token_urlsafe(32)}",
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "S3_ENDPOINT": stack.s3_endpoint,
        "S3_ACCESS_KEY": stack.s3_access_key,
        "S3_SECRET_KEY": stack.s3_secret_key,
        "S3_BUCKET_NAME": stack.s3_bucket,
        "S3_REGION": "us-east-1",
        "CORS_ORIGINS": "https://app.irisvue.test",
        # The test stack's S3 (moto) speaks plain HTTP on loopback.
        "ALLOW_INSECURE_TRANSPORT": "true",
    }


def import_wsgi(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import wsgi; print(wsgi.app.config['IRISVUE_ENV'])"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_complete_production_env_starts(production_env, tmp_path):
    done = import_wsgi(clean_env(tmp_path, **production_env))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "production"
    # Production never writes generated secrets.
    assert not (tmp_path / "secrets.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short-but-random-7f3a"}, "SECRET_KEY"),
        ({"JWT_SECRET_KEY": None}, "JWT_SECRET_KEY"),
        ({"MASTER_KEYS": None}, "MASTER_KEYS"),
        ({"DATABASE_URL": "sqlite:////tmp/irisvue.sqlite3"}, "DATABASE_URL"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"S3_ENDPOINT": None}, "S3_ENDPOINT"),
        ({"S3_SECRET_KEY": "minioadmin"}, "S3_SECRET_KEY"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": '["https://app.irisvue.test", "*"]'}, "CORS_ORIGINS"),
        ({"ALLOW_INSECURE_TRANSPORT": None}, "S3_SECURE"),
    ],
    ids=lambda value: (
        "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None
    ),
)
def test_production_refuses_unsafe_setting_with_one_line(production_env, tmp_path, change, setting):
    settings = {**production_env, **change}
    env = clean_env(tmp_path, **{k: v for k, v in settings.items() if v is not None})
    done = import_wsgi(env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert setting in lines[0]
    assert "Traceback" not in done.stderr
    for value in change.values():  # never echo the secret it refuses
        if value and "KEY" in setting:
            assert value not in lines[0].replace(setting, "")


def test_embedded_default_with_no_configuration(tmp_path):
    config = from_env({}, tmp_path)
    assert config["IRISVUE_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'irisvue.sqlite3'}"
    assert config["REDIS_URL"] is None
    assert config["S3_ENDPOINT"] is None
    assert config["STORAGE_DIR"] == str(tmp_path / "objects")
    assert config["SMTP_HOST"] is None
    assert config["CORS_ORIGINS"] == []
    assert config["APP_NAME"] == "IrisVue"
    for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
        assert len(config[name].encode()) >= 32
    assert config["SECRET_KEY"] != config["JWT_SECRET_KEY"]
    assert len(config["MASTER_KEYS"]) == 1
    secrets_file = tmp_path / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_dev_secrets_generated_once_and_shared(tmp_path):
    first = from_env({}, tmp_path)
    second = from_env({}, tmp_path)
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "MASTER_KEYS"):
        assert first[name] == second[name]
    # Given secrets win over generated ones.
    given = from_env({"SECRET_KEY": "s" * 40}, tmp_path)
    assert given["SECRET_KEY"] == "s" * 40
    assert given["JWT_SECRET_KEY"] == first["JWT_SECRET_KEY"]
    # Another instance folder gets its own.
    assert from_env({}, tmp_path / "other")["SECRET_KEY"] != first["SECRET_KEY"]


def test_dev_secrets_agree_across_concurrent_processes(tmp_path):
    """gunicorn workers start together; they must all sign with one key."""
    instance = tmp_path / "instance"
    script = (
        "import json, sys; from pathlib import Path; from irisvue.config import from_env; "
        "c = from_env({}, Path(sys.argv[1])); "
        "print(json.dumps([c['SECRET_KEY'], c['JWT_SECRET_KEY'], c['MASTER_KEYS']]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(instance)],
            cwd=REPO,
            env=clean_env(instance),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outputs.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(output == outputs[0] for output in outputs)
    on_disk = json.loads((instance / "secrets.json").read_text())
    assert outputs[0][0] == on_disk["SECRET_KEY"]


def test_cors_origins_accepts_json_list_or_commas():
    assert parse_origins('["https://a.test", "https://b.test"]') == [
        "https://a.test",
        "https://b.test",
    ]
    assert parse_origins(" https://a.test , https://b.test ,") == [
        "https://a.test",
        "https://b.test",
    ]
    assert parse_origins("") == []
    with pytest.raises(ConfigError):
        parse_origins('["https://a.test", 3]')


@pytest.mark.parametrize("name", ["MAX_UPLOAD_MB", "HEALTH_TIMEOUT_SECONDS"])
def test_bad_number_setting_names_the_variable(tmp_path, name):
    with pytest.raises(ConfigError, match=name):
        from_env({name: "twenty"}, tmp_path)


ALLOWED = "https://app.irisvue.test"


def test_cors_allows_only_configured_origins(stack_env, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", f'["{ALLOWED}", "https://admin.irisvue.test"]')
    client = create_app().test_client()

    allowed = client.get("/api/openapi.json", headers={"Origin": ALLOWED})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in allowed.headers.get("Vary", "")
    assert "Access-Control-Allow-Credentials" not in allowed.headers

    preflight = client.options(
        "/api/openapi.json",
        headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED

    for origin in ("https://evil.test", "https://app.irisvue.test.evil.test", "null"):
        other = client.get("/api/openapi.json", headers={"Origin": origin})
        assert other.status_code == 200
        assert "Access-Control-Allow-Origin" not in other.headers, origin
        preflight = client.options(
            "/api/openapi.json",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in preflight.headers, origin


def test_cors_covers_the_api_only(stack_env, monkeypatch):
    """Probes and /metrics are for operators, never for a browser on another origin."""
    monkeypatch.setenv("CORS_ORIGINS", f'["{ALLOWED}"]')
    client = create_app().test_client()
    for path in ("/health", "/metrics"):
        response = client.get(path, headers={"Origin": ALLOWED})
        assert "Access-Control-Allow-Origin" not in response.headers, path


def test_no_session_cookie_is_ever_set(client):
    """The API is stateless: no Flask cookie session, even on errors."""
    for path in ("/health", "/nope", "/api/openapi.json"):
        assert "Set-Cookie" not in client.get(path).headers


def test_no_cors_origins_means_no_cross_origin_access(stack_env, monkeypatch):
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    client = create_app().test_client()
    response = client.get("/health", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in response.headers


# Issue #12 finding 10: plain transports and disabled limits need saying so -------

SAFE_TRANSPORT = {
    "IRISVUE_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "JWT_SECRET_KEY": "j" * 48,
    "MASTER_KEYS": "prod1:" + "k" * 43,
    "DATABASE_URL": "postgresql://irisvue@db/irisvue",
    "REDIS_URL": "redis://redis:6379/0",
    "S3_ENDPOINT": "s3.example.com",
    "S3_ACCESS_KEY": "irisvue-app",
    "S3_SECRET_KEY": "a-long-random-s3-secret-of-the-app-user",
    "S3_SECURE": "true",
    "SMTP_HOST": "smtp.example.com",
    "SMTP_STARTTLS": "true",
}


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"RATELIMIT_ENABLED": "false"}, "RATELIMIT_ENABLED"),
        ({"S3_SECURE": "false"}, "S3_SECURE"),
        ({"SMTP_STARTTLS": "false"}, "SMTP_SSL"),
        ({"SMTP_SSL": "true"}, "SMTP_SSL"),  # with STARTTLS too: choose one
    ],
)
def test_production_refuses_insecure_transport(tmp_path, change, setting):
    from irisvue.config import ConfigError, from_env

    with pytest.raises(ConfigError) as refused:
        from_env({**SAFE_TRANSPORT, **change}, tmp_path)
    message = str(refused.value)
    assert setting in message and "\n" not in message


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"SMTP_STARTTLS": "false", "SMTP_SSL": "true", "SMTP_PORT": "465"},
        {"SMTP_HOST": ""},  # no mail server configured: nothing to protect
        {
            "RATELIMIT_ENABLED": "false",
            "S3_SECURE": "false",
            "SMTP_STARTTLS": "false",
            "ALLOW_INSECURE_TRANSPORT": "true",
        },
    ],
)
def test_production_accepts_tls_or_a_declared_private_network(tmp_path, change):
    from irisvue.config import from_env

    config = from_env({**SAFE_TRANSPORT, **change}, tmp_path)
    assert config["IRISVUE_ENV"] == "production"


def test_argon2_hashes_in_flight_share_the_cores_among_the_web_workers(monkeypatch):
    """More hashes at once than cores only contend for CPU and cache: the default
    divides the usable cores among the workers."""
    from irisvue.settings import auth_settings

    cores = len(os.sched_getaffinity(0))

    def slots(**env: str) -> int:
        return auth_settings(env)["ARGON2_MAX_CONCURRENCY"]

    assert slots(WEB_CONCURRENCY="1") == cores
    assert slots(WEB_CONCURRENCY=str(cores)) == 1
    assert slots(WEB_CONCURRENCY=str(cores * 4)) == 1  # never none
    # Unset, WEB_CONCURRENCY means gunicorn.conf.py's own default number of workers.
    workers = gunicorn_conf(monkeypatch)["workers"]
    assert slots() == max(1, cores // workers)
    assert slots(WEB_CONCURRENCY="1", ARGON2_MAX_CONCURRENCY="3") == 3
