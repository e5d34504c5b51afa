"""schemathesis hooks for the contract run: a fresh session for every test case.

Loaded by `st run` through `SCHEMATHESIS_HOOKS=<this file>`; it reads the
fuzzing account from the environment (`FUZZ_BASE_URL`, `FUZZ_EMAIL`,
`FUZZ_PASSWORD`). Several operations end the caller's own session (logout,
logout-all, DELETE /sessions/{id}), so a token shared by the whole run would
turn every later case into a 401. Logging in per case keeps each case
independent of the ones before it, without excluding any operation from
fuzzing. (Consent writes run as an account of their own: tests/support/fuzz.py.)

The upload's `file` part is documented as `image/jpeg, image/png`; the server
decides by the bytes. schemathesis has no generator for those media types in
a multipart part (it sends arbitrary files), so real images of random size
and pixels are registered for them: positive cases are what the document
promises, negative cases are still generated from the schema.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st
from PIL import Image

BASE = os.environ.get("FUZZ_BASE_URL", "").rstrip("/")
EMAIL = os.environ.get("FUZZ_EMAIL", "")
PASSWORD = os.environ.get("FUZZ_PASSWORD", "")

_local = threading.local()


def _http() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


@schemathesis.auth(refresh_interval=None)
class FreshSession:
    """Logs in before each case; /auth/refresh gets the refresh token, the rest the access one."""

    def get(self, case: Any, ctx: Any) -> str:
        response = _http().post(
            f"{BASE}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=30
        )
        response.raise_for_status()
        pair = response.json()
        if case.operation.path == "/api/v1/auth/refresh":
            return pair["refresh_token"]
        return pair["access_token"]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _image(fmt: str, width: int, height: int, pixels: bytes, exif: bool) -> bytes:
    image = Image.frombytes("RGB", (width, height), pixels.ljust(width * height * 3, b"\x80"))
    out = io.BytesIO()
    extra: dict[str, Any] = {}
    if exif:  # metadata the server must strip
        meta = Image.Exif()
        meta[0x0110] = "FuzzCam"  # Model
        extra["exif"] = meta
    image.save(out, fmt, **extra)
    return out.getvalue()


def _images(fmt: str) -> st.SearchStrategy[bytes]:
    return st.integers(1, 48).flatmap(
        lambda w: st.integers(1, 48).flatmap(
            lambda h: st.builds(
                _image,
                st.just(fmt),
                st.just(w),
                st.just(h),
                st.binary(max_size=w * h * 3),
                st.booleans(),
            )
        )
    )


schemathesis.openapi.media_type("image/png", _images("PNG"))
schemathesis.openapi.media_type("image/jpeg", _images("JPEG"))
