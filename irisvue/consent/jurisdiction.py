"""Which jurisdiction's consent texts a client should see, from its IP address.

`GEOIP_DATABASE` names a MaxMind-format City database (GeoLite2-City,
GeoIP2-City, or any file with the same record layout). It is opened once per
process, when the app is built, and that one reader (memory-mapped, read-only,
safe to share between threads) answers every lookup; a missing or unreadable
file, or a database without subdivisions (a Country database could never tell
Illinois from Ohio), stops the app from starting. To take a new edition, restart
the processes.

The address is looked up and forgotten: never stored, never logged, never
returned; only the country and first-level subdivision codes are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import maxminddb
import structlog
from flask import Flask, current_app

from irisvue.settings import ConfigError

log = structlog.get_logger(__name__)

EXTENSION = "irisvue.geoip"

# EU-27, the rest of the EEA (IS, LI, NO), the UK (GB) and Switzerland. MaxMind
# gives a few integral parts of EU member states their own ISO country code:
# Åland (FI) and the outermost regions of France (GF, GP, MQ, RE, YT, MF).
GDPR_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
        "IS", "LI", "NO",
        "GB",
        "CH",
        "AX", "GF", "GP", "MQ", "RE", "YT", "MF",
    }
)  # fmt: skip
US_STATES = {"IL": "bipa", "CA": "ccpa"}

# Where an answer came from: the database placed the address in a country; the
# address is not in it (private, loopback, unallocated); no database is
# configured; the database failed at lookup time (corrupt data).
SOURCES = ("geoip", "not_found", "unconfigured", "unavailable")


@dataclass(frozen=True)
class Suggestion:
    jurisdiction: str
    country: str | None
    region: str | None
    source: str


def jurisdiction_for(country: str | None, region: str | None) -> str:
    """gdpr / bipa / ccpa / generic for an ISO country and first-level subdivision code."""
    if country in GDPR_COUNTRIES:
        return "gdpr"
    if country == "US" and region in US_STATES:
        return US_STATES[region]
    return "generic"


def open_database(path: str) -> maxminddb.Reader:
    """Open a City database, or raise ConfigError with one line naming GEOIP_DATABASE."""
    try:
        reader = maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(
            f"GEOIP_DATABASE={path} cannot be opened as a MaxMind DB: {reason}"
        ) from None
    database_type = reader.metadata().database_type
    # The same test geoip2's Reader.city() makes.
    if "City" not in database_type:
        reader.close()
        raise ConfigError(
            f"GEOIP_DATABASE={path} is a {database_type} database; a City database is "
            "needed (GeoLite2-City or GeoIP2-City: US states come from its subdivisions)"
        )
    return reader


class GeoIP:
    """The process's one reader of GEOIP_DATABASE."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reader = open_database(path)
        self._failure_logged = False

    def lookup(self, ip_address: str | None) -> Suggestion:
        try:
            record = self.reader.get(ip_address) if ip_address else None
        except ValueError:
            # Not an address, or IPv6 in an IPv4-only database. The message
            # names the address: it is dropped, not logged.
            record = None
        except maxminddb.InvalidDatabaseError:
            if not self._failure_logged:
                self._failure_logged = True
                log.error("geoip_database_unreadable", path=self.path)
            return Suggestion("generic", None, None, "unavailable")
        country = _code(record, "country")
        if country is None:
            return Suggestion("generic", None, None, "not_found")
        subdivisions = record.get("subdivisions") if isinstance(record, dict) else None
        first = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
        region = _code(first, None)
        return Suggestion(jurisdiction_for(country, region), country, region, "geoip")


def _code(record: Any, key: str | None) -> str | None:
    """`record[key]["iso_code"]` (or `record["iso_code"]`) when it is a string."""
    if not isinstance(record, dict):
        return None
    entry = record.get(key) if key else record
    code = entry.get("iso_code") if isinstance(entry, dict) else None
    return code if isinstance(code, str) and code else None


def init_geoip(app: Flask) -> None:
    """Open GEOIP_DATABASE when it is set (refusing to start if it cannot be used)."""
    path = app.config.get("GEOIP_DATABASE")
    app.extensions[EXTENSION] = GeoIP(path) if path else None


def geoip(app: Flask | None = None) -> GeoIP | None:
    """The app's GeoIP reader, or None without GEOIP_DATABASE."""
    return (app or current_app).extensions.get(EXTENSION)


def suggest(ip_address: str | None) -> Suggestion:
    """The jurisdiction whose consent texts a client at this address should see."""
    reader = geoip()
    if reader is None:
        return Suggestion("generic", None, None, "unconfigured")
    return reader.lookup(ip_address)
