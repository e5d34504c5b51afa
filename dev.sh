#!/usr/bin/env bash
# The two ways in (see README):  ./dev.sh serve   |   ./dev.sh test [pytest args]
# Creates .venv from the lock files on first use (or when a lock changes).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}

ensure_venv() {
  local lock=$1 stamp=".venv/.installed-$1"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "dev.sh: Python 3.11+ is required (PYTHON=$PYTHON)" >&2; exit 1; }
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$lock"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    touch "$stamp"
  fi
}

case "${1:-}" in
  serve)
    ensure_venv requirements.lock
    .venv/bin/flask --app wsgi release
    exec .venv/bin/gunicorn --config gunicorn.conf.py wsgi:app
    ;;
  test)
    shift
    ensure_venv requirements-dev.lock
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    exec .venv/bin/pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh serve | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
