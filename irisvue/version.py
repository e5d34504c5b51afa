"""The installed package's version (what /health and the OpenAPI document report)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("irisvue")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
