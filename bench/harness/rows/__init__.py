"""The benchmark table's rows: one builder per bench/run script's result (bench/report.py).

format    what every row shares: verdicts, [min-max] ranges, rates, noise
web       bench/health.py and bench/auth.py
upload    bench/upload.py
privacy   bench/privacy.py
load      bench/load.py
"""

from __future__ import annotations

from collections.abc import Callable

from .format import Row
from .load import load_rows
from .privacy import privacy_rows
from .upload import upload_rows
from .web import auth_rows, health_rows

RENDERERS: dict[str, Callable[[dict], list[Row]]] = {
    "health": health_rows,
    "auth": auth_rows,
    "upload": upload_rows,
    "privacy": privacy_rows,
    "load": load_rows,
}
