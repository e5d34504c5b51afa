"""Users' data keys: they live in `irisvue.crypto.user_keys` (auth needs them too)."""

from irisvue.crypto.user_keys import (
    KEYRING_EXTENSION,
    RewrapReport,
    find_user_key,
    get_keyring,
    get_or_create_data_key,
    init_keyring,
    load_data_key,
    rewrap_all,
    unwrap,
)

__all__ = [
    "KEYRING_EXTENSION",
    "RewrapReport",
    "find_user_key",
    "get_keyring",
    "get_or_create_data_key",
    "init_keyring",
    "load_data_key",
    "rewrap_all",
    "unwrap",
]
