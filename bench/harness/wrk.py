"""wrk (Debian: `apt-get install -y wrk`): one fixed request at a fixed concurrency, its
figures, and the server's CPU time per request read from /proc around the run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .procfs import cpu_seconds

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def require_wrk() -> bool:
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return False
    return True


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def lua_script(path: Path, method: str, body: str | None, headers: dict[str, str]) -> Path:
    """A wrk script sending one fixed request (method, body, headers)."""
    lines = [f"wrk.method = {json.dumps(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(
    url: str,
    seconds: int,
    connections: int,
    threads: int,
    *,
    script: Path | None = None,
    timeout: int = 10,
) -> dict[str, Any]:
    """req/s, p50 and p99 in ms, request count, non-2xx count and socket errors of one run."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        f"{timeout}s",
        "--latency",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    output = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "requests_per_s": rps,
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def measure(
    url: str, arbiter: int, seconds: int, connections: int, threads: int, **wrk: Any
) -> dict[str, Any]:
    """wrk's figures plus the server's CPU time per request (robust to a busy machine)."""
    before = cpu_seconds(arbiter)
    row = run_wrk(url, seconds, connections, threads, **wrk)
    row["cpu_us_per_req"] = (cpu_seconds(arbiter) - before) / max(row["requests"], 1) * 1e6
    return row


def median_run(rows: list[dict]) -> dict:
    """The run with the median throughput (its own latencies, not a mix of runs)."""
    ordered = sorted(rows, key=lambda row: row["requests_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_rps": [row["requests_per_s"] for row in rows]}
