"""gunicorn entry point: `gunicorn wsgi:app`."""

import sys

from dotenv import load_dotenv

from irisvue import create_app
from irisvue.config import ConfigError

load_dotenv()  # a local .env, if any; real environment variables win

try:
    app = create_app()
except ConfigError as exc:
    # One clear line for the operator instead of a traceback.
    sys.stderr.write(f"irisvue: refusing to start: {exc}\n")
    sys.exit(1)
