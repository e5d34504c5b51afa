"""Ledger keys are derived exactly as when the stored hashes and head MACs were written."""

from __future__ import annotations

import pytest

from irisvue.consent.keys import ledger_keys
from irisvue.settings import ConfigError

# Derived by the original hand-written HKDF-SHA256: a change here would leave
# every keyed record and head failing to verify.
KNOWN = {
    "l2026a": "5e262e851acc9daf9d2b681fe7f5025a0e77b342dc77c4d285b879dcd869a778",
    "k2": "f03532399cdf57feea4751778918c34c28a2e712fbfbc86218c8d7b64c35a2de",
    "sk1": "a2a9ea60fc662b5a94b9819eeab7c3aafc9a6eb75d472cfb02a6969bcca1e105",
}


def test_derived_keys_are_unchanged():
    config = {"LEDGER_KEYS": "l2026a:" + "r" * 40 + ", k2:" + "é" * 16, "SECRET_KEY": "s" * 40}
    current, keys = ledger_keys(config)
    assert current == "l2026a"
    assert {key_id: key.hex() for key_id, key in keys.items()} == KNOWN


@pytest.mark.parametrize(
    "entries", ["k2", "k2:" + "r" * 31, ":" + "r" * 40, "a b:" + "r" * 40, "k2:"]
)
def test_a_malformed_entry_is_named_as_ledger_keys(entries):
    with pytest.raises(ConfigError, match=r"^LEDGER_KEYS entries must look like `id:secret`"):
        ledger_keys({"LEDGER_KEYS": entries, "SECRET_KEY": "s" * 40})
