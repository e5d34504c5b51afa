"""Runs schemathesis (the `st` CLI) against a live IrisVue with every check it has.

Used by tests/contract/test_schemathesis.py (bounded, for CI) and
scripts/fuzz (longer). The CLI, not schemathesis' pytest plugin: the plugin
does not work with pytest 9.

Two invocations, each as its own fuzzing account, because recording a consent
decision or withdrawing one destroys the account's biometric data: run in the
same account as the capture endpoints, a refusal fuzzed at any moment would
turn every later read of an earlier capture into a (correct) 410. Everything
else shares the first account; tests/support/st_hooks.py logs in afresh for
each case, so logout, logout-all and session revocation are fuzzed too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).parent / "st"
HOOKS = Path(__file__).resolve().parent / "st_hooks.py"

# Operations that change the account's consent (and so destroy its captures).
CONSENT_WRITES = ("recordConsent", "withdrawConsent")
# What the consent account is fuzzed on: the writes, what reads their effect,
# and the job they link to.
CONSENT_RUN = (*CONSENT_WRITES, "getJob", "getJobEvents")


@dataclass(frozen=True)
class Account:
    email: str
    password: str


@dataclass(frozen=True)
class Run:
    name: str
    argv: list[str]
    returncode: int
    output: str
    seconds: float


def st_argv(
    base_url: str,
    *,
    max_examples: int,
    seed: int,
    report_dir: Path,
    selection: list[str],
) -> list[str]:
    return [
        str(ST),
        "run",
        f"{base_url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--generation-database",
        "none",  # the same seed replays the same cases, whatever ran before
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        *selection,
    ]


def run_schemathesis(
    base_url: str,
    main: Account,
    consent: Account,
    *,
    max_examples: int,
    seed: int,
    report_dir: Path,
    timeout: float,
) -> list[Run]:
    """Both invocations, one after the other; each result carries st's full output."""
    exclude = [arg for op in CONSENT_WRITES for arg in ("--exclude-operation-id", op)]
    include = [arg for op in CONSENT_RUN for arg in ("--include-operation-id", op)]
    runs = []
    for name, account, selection in (
        ("main", main, exclude),
        ("consent", consent, include),
    ):
        argv = st_argv(
            base_url,
            max_examples=max_examples,
            seed=seed,
            report_dir=report_dir / name,
            selection=selection,
        )
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": str(HOOKS),
            "FUZZ_BASE_URL": base_url,
            "FUZZ_EMAIL": account.email,
            "FUZZ_PASSWORD": account.password,
            "PYTHONUNBUFFERED": "1",
        }
        started = time.monotonic()
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        runs.append(Run(name, argv, done.returncode, done.stdout, time.monotonic() - started))
    return runs
