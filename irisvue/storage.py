"""Object storage behind a small interface (STUB: being implemented)."""

from __future__ import annotations

from flask import Flask, current_app

STORAGE_EXTENSION = "irisvue.storage"


class StorageError(RuntimeError):
    """Storage failed; the caller must leave nothing half-written."""


class LocalStorage:
    backend = "local"

    def __init__(self, root: str) -> None:
        self.root = root

    def ping(self) -> None:
        return None


def init_storage(app: Flask) -> None:
    app.extensions[STORAGE_EXTENSION] = LocalStorage(app.config["STORAGE_DIR"])


def get_storage() -> LocalStorage:
    return current_app.extensions[STORAGE_EXTENSION]
