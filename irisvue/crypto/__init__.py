"""Per-user data keys wrapped by master keys, and streaming encryption (Google Tink).

Envelope encryption in two layers:

* **Master keys** come from `MASTER_KEYS` (`id1:material1,id2:material2`, parsed by
  `irisvue.config.parse_master_keys`). `material` is 32 random bytes in base64url (the
  standard alphabet and `=` padding are accepted too), used as an AES-256-GCM key through a
  one-key Tink AEAD keyset. Generate one with `python -m irisvue.crypto generate-master-key`
  (or `openssl rand -base64 32`). Ids match `[A-Za-z0-9._-]{1,64}`. The first key wraps new
  data keys; the others only unwrap, so a master key rotates by prepending a new one, running
  `rewrap` over every wrapped key whose `master_key_id != keyring.primary_id`, then dropping
  the old key from the configuration.
* **Data keys**, one per user, are Tink streaming AEAD keysets (AES256_GCM_HKDF_1MB: AES-256,
  HKDF-SHA256 key derivation per object, 1 MiB segments, each authenticated). A data key is
  stored only wrapped: `WrappedKey(master_key_id, ciphertext)` where `ciphertext` is a Tink
  encrypted keyset (`proto_keyset_format.serialize_encrypted`) whose associated data binds
  the user id, so a wrapped key copied to another user's row does not unwrap. Deleting the
  wrapped key crypto-shreds every object encrypted under it.

Objects are encrypted with the object key as associated data, so ciphertexts swapped
between objects fail to decrypt. Decryption releases a segment's plaintext only after its
tag verifies; truncation is detected at the end of the stream (`DecryptionError`), so a
streamed response may already have sent earlier, authentic segments when that happens.
`ciphertext_size` gives the exact ciphertext length for a plaintext length.

Layout: `keys.py` (master keys, data keys, wrapping), `streams.py` (encryption streams),
`__main__.py` (the key generator command).
"""

from irisvue.crypto.keys import (
    MASTER_KEY_BYTES,
    CryptoError,
    DataKey,
    DecryptionError,
    MasterKeyring,
    UnknownMasterKeyError,
    UnwrapError,
    WrappedKey,
    generate_data_key,
    generate_master_key,
)
from irisvue.crypto.streams import (
    SEGMENT_SIZE,
    EncryptingReader,
    PlaintextStream,
    ciphertext_size,
    decrypting_reader,
    encrypting_writer,
    iter_decrypted,
    iter_encrypted,
)

__all__ = [
    "MASTER_KEY_BYTES",
    "SEGMENT_SIZE",
    "CryptoError",
    "DataKey",
    "DecryptionError",
    "EncryptingReader",
    "MasterKeyring",
    "PlaintextStream",
    "UnknownMasterKeyError",
    "UnwrapError",
    "WrappedKey",
    "ciphertext_size",
    "decrypting_reader",
    "encrypting_writer",
    "generate_data_key",
    "generate_master_key",
    "iter_decrypted",
    "iter_encrypted",
]
