"""What the consent feature announces; higher features subscribe in their `init_app`.

Receivers run inside the transaction that appends the record (before its
commit), so what they add commits, or rolls back, with it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# sender: the app; kwargs: user_id, record (the withdrawal's ConsentRecord).
# A receiver may return a Job it submitted; the consent receipt carries it.
biometric_consent_withdrawn = _signals.signal("biometric-consent-withdrawn")
