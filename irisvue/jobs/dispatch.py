"""RQ wiring (STUB: being implemented)."""

from flask import Flask


def init_jobs(app: Flask) -> None:
    return None
