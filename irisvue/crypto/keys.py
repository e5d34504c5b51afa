"""Master keys (from MASTER_KEYS) and per-user data keys wrapped under them."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import tink
from tink import aead, secret_key_access, streaming_aead
from tink.proto import aes_gcm_pb2, tink_pb2  # fenced: tests/test_dependency_fences.py

from irisvue.config import ConfigError

MASTER_KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BASE64 = re.compile(r"[A-Za-z0-9_+/-]+={0,2}")
_AES_GCM_TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmKey"
_WRAP_CONTEXT = b"irisvue/data-key/v1:"


class CryptoError(Exception):
    """Base class of the errors below; messages never contain key material."""


class UnknownMasterKeyError(CryptoError):
    """A wrapped key names a master key id that is not in MASTER_KEYS."""


class UnwrapError(CryptoError):
    """A wrapped key is damaged, belongs to another user, or the master key is wrong."""


class DecryptionError(CryptoError):
    """Ciphertext tampered with, truncated, or read with the wrong key or associated data."""


@functools.cache
def _register_tink() -> None:
    aead.register()
    streaming_aead.register()


def _wrap_associated_data(user_id: uuid.UUID | str) -> bytes:
    text = str(user_id).strip()
    if not text:
        raise ValueError("user_id must not be empty")
    with contextlib.suppress(ValueError):  # one spelling per user: UUID or str alike
        text = str(uuid.UUID(text))
    return _WRAP_CONTEXT + text.encode()


class DataKey:
    """A user's streaming AEAD key (plaintext key material: never log or store it)."""

    __slots__ = ("_handle", "primitive")

    def __init__(self, handle: tink.KeysetHandle) -> None:
        self._handle = handle
        self.primitive: streaming_aead.StreamingAead = handle.primitive(
            streaming_aead.StreamingAead
        )

    def __repr__(self) -> str:
        return "<DataKey>"


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under the master key `master_key_id` (safe to store)."""

    master_key_id: str
    ciphertext: bytes = field(repr=False)


def generate_data_key() -> DataKey:
    """A fresh random AES256_GCM_HKDF_1MB streaming key."""
    _register_tink()
    template = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB
    return DataKey(tink.new_keyset_handle(template))


def generate_master_key() -> str:
    """A new master key material: 32 random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).rstrip(b"=").decode()


def _master_aead(key_id: str, material: str) -> aead.Aead:
    hint = "generate one with `python -m irisvue.crypto generate-master-key`"
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError(f"MASTER_KEYS: key id {key_id!r} must match [A-Za-z0-9._-]{{1,64}}")
    if not _BASE64.fullmatch(material):
        raise ConfigError(f"MASTER_KEYS: key {key_id!r} is not base64; {hint}")
    unpadded = material.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"MASTER_KEYS: key {key_id!r} is not valid base64; {hint}") from exc
    if len(raw) != MASTER_KEY_BYTES:
        raise ConfigError(
            f"MASTER_KEYS: key {key_id!r} is {len(raw)} bytes, needs {MASTER_KEY_BYTES}; {hint}"
        )
    if len(set(raw)) < 16:  # 32 random bytes have ~30 distinct values; this is a placeholder
        raise ConfigError(f"MASTER_KEYS: key {key_id!r} is not random; {hint}")
    # Tink (Python) imports raw key bytes only as a keyset proto; RAW prefix = plain AES-GCM.
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url=_AES_GCM_TYPE_URL,
                    value=aes_gcm_pb2.AesGcmKey(version=0, key_value=raw).SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=1,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    _register_tink()
    handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    return handle.primitive(aead.Aead)


class MasterKeyring:
    """The configured master keys: the first wraps, every one unwraps."""

    def __init__(self, keys: list[tuple[str, aead.Aead]]) -> None:
        if not keys:
            raise ConfigError("MASTER_KEYS is empty: at least one master key is required")
        self.primary_id = keys[0][0]
        self._keys = dict(keys)
        if len(self._keys) != len(keys):
            raise ConfigError("MASTER_KEYS: key ids must be unique")

    @classmethod
    def from_config(cls, pairs: Iterable[tuple[str, str]]) -> MasterKeyring:
        """Build from `app.config["MASTER_KEYS"]`; raises ConfigError on bad material."""
        return cls([(key_id, _master_aead(key_id, material)) for key_id, material in pairs])

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def wrap(self, data_key: DataKey, user_id: uuid.UUID | str) -> WrappedKey:
        """Encrypt `data_key` under the primary master key, bound to `user_id`."""
        ciphertext = tink.proto_keyset_format.serialize_encrypted(
            data_key._handle, self._keys[self.primary_id], _wrap_associated_data(user_id)
        )
        return WrappedKey(self.primary_id, ciphertext)

    def unwrap(self, wrapped: WrappedKey, user_id: uuid.UUID | str) -> DataKey:
        """Decrypt a wrapped key of `user_id`; UnknownMasterKeyError / UnwrapError."""
        master = self._keys.get(wrapped.master_key_id)
        if master is None:
            raise UnknownMasterKeyError(
                f"wrapped key uses master key {wrapped.master_key_id!r}, not in MASTER_KEYS"
            )
        try:
            handle = tink.proto_keyset_format.parse_encrypted(
                bytes(wrapped.ciphertext), master, _wrap_associated_data(user_id)
            )
            return DataKey(handle)
        except tink.TinkError as exc:
            raise UnwrapError(
                f"cannot unwrap data key under master key {wrapped.master_key_id!r}"
            ) from exc

    def rewrap(self, wrapped: WrappedKey, user_id: uuid.UUID | str) -> WrappedKey:
        """Re-encrypt a wrapped key under the current primary master key (rotation)."""
        return self.wrap(self.unwrap(wrapped, user_id), user_id)
