"""What the auth feature announces; higher features subscribe in their `init_app`.

Receivers run inside the caller's transaction (before its commit), so what
they add commits, or rolls back, with it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# sender: the app; kwargs: user_id. Apple told us the person's Apple Account is
# deleted and it was their only way in: erase the account as if they had asked.
account_deletion_requested = _signals.signal("account-deletion-requested")
