"""Ledger keys: the server secrets the consent chain's hashes and head are HMACs under.

LEDGER_KEYS is `id1:secret1,id2:secret2` (the first keys new records; keep
old ones listed so their records still verify). Without it, one key with the
id `sk1` is derived from SECRET_KEY. Each secret goes through HKDF-SHA256
(RFC 5869) with the key id in `info`, so one secret never serves two purposes.
The database holds only key ids: someone who can write to it but does not hold
these secrets cannot recompute a record's hash or the head's MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from irisvue.settings import ConfigError

DERIVED_KEY_ID = "sk1"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MIN_SECRET_BYTES = 32


def hkdf_sha256(secret: bytes, info: bytes, salt: bytes = b"irisvue:consent-ledger") -> bytes:
    """One 32-byte output block of HKDF-SHA256 (extract, then expand)."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def ledger_keys(config: Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """(id of the key for new records, every key by id). Raises ConfigError if malformed."""
    keys: dict[str, bytes] = {}
    current = None
    for part in str(config.get("LEDGER_KEYS") or "").split(","):
        if not part.strip():
            continue
        key_id, sep, secret = (p.strip() for p in part.partition(":"))
        if not sep or not _KEY_ID.fullmatch(key_id) or len(secret.encode()) < _MIN_SECRET_BYTES:
            raise ConfigError(
                "LEDGER_KEYS entries must look like `id:secret` "
                f"(id [A-Za-z0-9._-], secret at least {_MIN_SECRET_BYTES} bytes)"
            )
        keys[key_id] = hkdf_sha256(secret.encode(), key_id.encode())
        current = current or key_id
    secret_key = str(config.get("SECRET_KEY") or "")
    if secret_key:
        keys.setdefault(DERIVED_KEY_ID, hkdf_sha256(secret_key.encode(), DERIVED_KEY_ID.encode()))
    if not keys:
        raise ConfigError("the consent ledger needs LEDGER_KEYS or SECRET_KEY")
    return current or DERIVED_KEY_ID, keys


def current_keys() -> tuple[str, dict[str, bytes]]:
    """The app's ledger keys, derived once per app (init_app) and kept in its extensions."""
    from flask import current_app

    cached = current_app.extensions.get("irisvue.ledger_keys")
    if cached is None:
        cached = current_app.extensions["irisvue.ledger_keys"] = ledger_keys(current_app.config)
    return cached
