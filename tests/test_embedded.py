"""The embedded development stack: no configuration at all, SQLite in the instance folder."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from irisvue import create_app
from irisvue.extensions import db

REPO = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).parent / "flask"  # the flask of the interpreter running the tests


@pytest.mark.slow
def test_db_upgrade_then_ready_on_sqlite(embedded_env):
    instance = Path(embedded_env["IRISVUE_INSTANCE_PATH"])
    flask = str(FLASK) if FLASK.exists() else "flask"
    done = subprocess.run(
        [flask, "--app", "wsgi", "db", "upgrade"],
        cwd=REPO,
        env=embedded_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    database = instance / "irisvue.sqlite3"
    assert database.exists()
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        heads = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    assert {"users", "jobs", "alembic_version"} <= tables
    assert len(heads) == 1

    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}"
    # The CLI process generated the dev secrets; this process reads the same ones.
    generated = json.loads((instance / "secrets.json").read_text())
    assert app.config["SECRET_KEY"] == generated["SECRET_KEY"]
    try:
        response = app.test_client().get("/health/ready")
        body = response.get_json()
        assert response.status_code == 200, body
        backends = {name: check.get("backend") for name, check in body["checks"].items()}
        assert backends == {"db": "sqlite", "redis": "disabled", "storage": "local"}
        assert all(check["status"] == "ok" for check in body["checks"].values())
    finally:
        with app.app_context():
            db.engine.dispose()
