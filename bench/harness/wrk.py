"""wrk (Debian: `apt-get install -y wrk`): one fixed request at a fixed concurrency, its
figures, and the server's CPU time per request read from /proc around the run; interleaved
rounds of several targets and their table."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .procfs import cpu_seconds, worker_cpu

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
    """wrk's figures plus the server's CPU time per request (robust to a busy machine)
    and each worker's share of that CPU (an unbalanced server shows one worker near 100%)."""
    before, workers_before = cpu_seconds(arbiter), worker_cpu(arbiter)
    row = run_wrk(url, seconds, connections, threads, **wrk)
    after, workers_after = cpu_seconds(arbiter), worker_cpu(arbiter)
    row["cpu_us_per_req"] = (after - before) / max(row["requests"], 1) * 1e6
    spent = {
        pid: workers_after[pid] - cpu for pid, cpu in workers_before.items() if pid in workers_after
    }
    total = sum(spent.values()) or 1e-9
    row["worker_cpu_s"] = {str(pid): round(cpu, 3) for pid, cpu in spent.items()}
    row["worker_cpu_share"] = sorted((cpu / total for cpu in spent.values()), reverse=True)
    return row


# A target of interleaved rounds: its URL, the gunicorn arbiter serving it (whose
# process tree's CPU is read) and the wrk script sending its request (None: a plain GET).
Target = tuple[str, int, Path | None]


def interleaved_rounds(
    targets: dict[str, Target],
    rounds: int,
    seconds: int,
    connections: int,
    threads: int,
    *,
    warmup: int,
    pause: float = 1.0,
) -> dict[str, list[dict]]:
    """`warmup` seconds of wrk on each target, then `rounds` rounds of `measure`, each
    round every target back to back in order (drift in the machine's load hits every
    target alike), `pause` seconds after each run; target name -> one row per round."""
    for url, _, script in targets.values():
        run_wrk(url, warmup, connections, threads, script=script)
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, arbiter, script) in targets.items():
            runs[name].append(measure(url, arbiter, seconds, connections, threads, script=script))
            time.sleep(pause)
    return runs


def print_table(results: dict[str, dict], width: int = 8) -> None:
    """One line per target of `median_run` summaries: req/s, p99 and server CPU per
    request as median [min-max], the median round's non-2xx count, each round's worker
    CPU split ("51%/49% | 50%/50%") and the median round's socket errors."""
    print(
        f"{'target':<{width}} {'req/s':>22} {'p99 ms':>18} {'CPU us/req':>18} {'non-2xx':>8}  "
        "worker CPU split per round"
    )
    for name, row in results.items():
        lo, hi = row["requests_per_s_range"]
        plo, phi = row["p99_ms_range"]
        clo, chi = row["cpu_us_per_req_range"]
        split = " | ".join(
            "/".join(f"{share:.0%}" for share in shares)
            for shares in row["rounds_worker_cpu_share"]
        )
        print(
            f"{name:<{width}} {row['requests_per_s_median']:>8.0f} [{lo:.0f}-{hi:.0f}]"
            f" {row['p99_ms_median']:>6.1f} [{plo:.0f}-{phi:.0f}]"
            f" {row['cpu_us_per_req_median']:>6.0f} [{clo:.0f}-{chi:.0f}]"
            f" {row['non_2xx']:>8}  {split}  {row['socket_errors']}"
        )


def median_run(rows: list[dict]) -> dict:
    """The run with the median throughput (its own latencies, not a mix of runs), plus
    every round's figures, the min-max of req/s, p99 and CPU per request, and the
    median of each."""
    ordered = sorted(rows, key=lambda row: row["requests_per_s"])
    summary = {**ordered[len(ordered) // 2], "rounds": len(rows)}
    for key in ("requests_per_s", "p99_ms", "cpu_us_per_req"):
        if any(key not in row for row in rows):
            continue  # e.g. login rounds: server CPU per login instead
        values = [row[key] for row in rows]
        summary[f"{key}_median"] = statistics.median(values)
        summary[f"{key}_range"] = [min(values), max(values)]
    summary["rounds_rps"] = [row["requests_per_s"] for row in rows]
    summary["rounds_p99_ms"] = [row["p99_ms"] for row in rows]
    summary["rounds_cpu_us_per_req"] = [row.get("cpu_us_per_req") for row in rows]
    summary["rounds_worker_cpu_share"] = [row.get("worker_cpu_share", []) for row in rows]
    return summary


def round_ratios(numerators: list[dict], denominators: list[dict], key: str) -> dict[str, Any]:
    """Ratio of two targets measured in the same interleaved rounds, round by round:
    the median and the min-max. `key` = "requests_per_s"; "cpu_us_per_req" inverts
    (a lower CPU cost is the higher throughput a CPU-bound box would show)."""
    if key == "cpu_us_per_req":
        values = [d[key] / n[key] for n, d in zip(numerators, denominators, strict=True)]
    else:
        values = [n[key] / d[key] for n, d in zip(numerators, denominators, strict=True)]
    return {
        "median": statistics.median(values),
        "range": [min(values), max(values)],
        "rounds": values,
    }


NOISE_LIMIT = 0.15  # hello moving more than this between rounds: the machine is too noisy


def noise_verdict(baseline_rows: list[dict], limit: float = NOISE_LIMIT) -> dict[str, Any]:
    """Whether the same-run baseline held still: its req/s spread (max-min over the
    median) across rounds. Above `limit`, no budget of the run can be judged."""
    rps = [row["requests_per_s"] for row in baseline_rows]
    spread = (max(rps) - min(rps)) / statistics.median(rps) if rps else 0.0
    too_noisy = len(rps) < 2 or spread > limit
    text = (
        f"hello moved {spread:.0%} between {len(rps)} rounds"
        + (f" (> {limit:.0%}): too noisy to judge" if too_noisy and len(rps) >= 2 else "")
        + (": one round cannot show noise, too noisy to judge" if len(rps) < 2 else "")
    )
    return {"spread": spread, "limit": limit, "too_noisy": too_noisy, "text": text}
