"""The baseline for bench/health.py: a bare Flask "hello" under the same gunicorn settings."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    """Hello, World! (no middleware, no database, no logging beyond gunicorn's)."""
    return "Hello, World!"
