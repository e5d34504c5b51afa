"""Ledger keys: the server secrets the consent chain's hashes and head are HMACs under.

LEDGER_KEYS is `id1:secret1,id2:secret2` (the first keys new records; keep
old ones listed so their records still verify). Without it, one key with the
id `sk1` is derived from SECRET_KEY. Each secret goes through HKDF-SHA256
(RFC 5869) with the key id in `info`, so one secret never serves two purposes.
The database holds only key ids: someone who can write to it but does not hold
these secrets cannot recompute a record's hash or the head's MAC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from irisvue.config import parse_master_keys
from irisvue.settings import ConfigError

DERIVED_KEY_ID = "sk1"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MIN_SECRET_BYTES = 32
_SALT = b"irisvue:consent-ledger"
_MALFORMED = (
    "LEDGER_KEYS entries must look like `id:secret` "
    f"(id [A-Za-z0-9._-], secret at least {_MIN_SECRET_BYTES} bytes)"
)


def _derive(secret: str, key_id: str) -> bytes:
    """32 bytes of HKDF-SHA256 (RFC 5869) of `secret`, with the key id as `info`."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=key_id.encode())
    return hkdf.derive(secret.encode())


def ledger_keys(config: Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """(id of the key for new records, every key by id). Raises ConfigError if malformed."""
    try:  # `id:secret` lists are read as MASTER_KEYS are
        entries = parse_master_keys(str(config.get("LEDGER_KEYS") or ""))
    except ConfigError:
        raise ConfigError(_MALFORMED) from None
    keys: dict[str, bytes] = {}
    for key_id, secret in entries:
        if not _KEY_ID.fullmatch(key_id) or len(secret.encode()) < _MIN_SECRET_BYTES:
            raise ConfigError(_MALFORMED)
        keys[key_id] = _derive(secret, key_id)
    secret_key = str(config.get("SECRET_KEY") or "")
    if secret_key:
        keys.setdefault(DERIVED_KEY_ID, _derive(secret_key, DERIVED_KEY_ID))
    if not keys:
        raise ConfigError("the consent ledger needs LEDGER_KEYS or SECRET_KEY")
    return entries[0][0] if entries else DERIVED_KEY_ID, keys


def current_keys() -> tuple[str, dict[str, bytes]]:
    """The app's ledger keys, derived once per app (init_app) and kept in its extensions."""
    from flask import current_app

    cached = current_app.extensions.get("irisvue.ledger_keys")
    if cached is None:
        cached = current_app.extensions["irisvue.ledger_keys"] = ledger_keys(current_app.config)
    return cached
