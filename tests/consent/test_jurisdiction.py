"""GET /api/v1/consents/jurisdiction: the client's IP → gdpr / bipa / ccpa / generic.

Each test builds a small MaxMind-format City database with mmdb-writer (the
record layout of GeoLite2-City: `country.iso_code`, `subdivisions[0].iso_code`)
and points GEOIP_DATABASE at it. The endpoint needs no PostgreSQL, Redis or S3,
so the app is the embedded one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import maxminddb
import pytest
from flask import Flask
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from irisvue import create_app, observability
from irisvue.consent.jurisdiction import geoip
from irisvue.models.consent import JURISDICTIONS
from irisvue.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]
URL = "/api/v1/consents/jurisdiction"

# network → (country, first-level subdivision)
PLACES = {
    "2.16.0.0/24": ("DE", "BE"),
    "2a02:2e0::/32": ("DE", "HE"),
    "81.2.69.0/24": ("GB", "ENG"),
    "5.144.0.0/24": ("CH", "ZH"),
    "193.4.0.0/24": ("IS", "1"),
    "64.107.0.0/24": ("US", "IL"),
    "8.8.8.0/24": ("US", "CA"),
    "3.0.0.0/24": ("US", "TX"),
    "200.160.0.0/24": ("BR", "SP"),
}
CONTINENT_ONLY = "45.0.0.0/24"  # MaxMind has such records: a continent, no country


def city_record(country: str, region: str) -> dict:
    return {
        "continent": {"code": "EU" if country not in {"US", "BR"} else "NA"},
        "country": {"iso_code": country, "names": {"en": country}},
        "subdivisions": [{"iso_code": region, "names": {"en": region}}],
        "city": {"names": {"en": "Somewhere"}},
    }


def write_database(path: Path, database_type: str = "GeoIP2-City") -> Path:
    # IPv6 tree with IPv4 in ::/96, as MaxMind ships GeoLite2-City.
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description="IrisVue test City database",
    )
    for network, (country, region) in PLACES.items():
        writer.insert_network(IPSet([network]), city_record(country, region))
    writer.insert_network(IPSet([CONTINENT_ONLY]), {"continent": {"code": "EU"}})
    writer.to_db_file(str(path))
    return path


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return write_database(tmp_path / "City.mmdb")


@pytest.fixture
def make_app(embedded_env: dict[str, str]):
    """`make_app(GEOIP_DATABASE=..., TRUSTED_PROXIES=...)`: an embedded app with these settings."""

    def _make(**config) -> Flask:
        application = create_app(config)
        application.config["TESTING"] = True
        return application

    return _make


@contextlib.contextmanager
def app_logs() -> Iterator[io.StringIO]:
    """Everything the app's logging pipeline writes, DEBUG and up (after create_app,
    which configures logging itself)."""
    buffer = io.StringIO()
    observability.configure_logging("DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        observability.configure_logging("INFO")


def generic(source: str) -> dict:
    """The answer for a client the database does not place (or without a database)."""
    return {"jurisdiction": "generic", "country": None, "region": None, "source": source}


def ask(application: Flask, ip: str, **kwargs):
    client = application.test_client()
    return client.get(URL, environ_base={"REMOTE_ADDR": ip}, **kwargs)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("2.16.0.1", {"jurisdiction": "gdpr", "country": "DE", "region": "BE"}),
        ("2a02:2e0::5", {"jurisdiction": "gdpr", "country": "DE", "region": "HE"}),
        ("81.2.69.142", {"jurisdiction": "gdpr", "country": "GB", "region": "ENG"}),
        ("5.144.0.9", {"jurisdiction": "gdpr", "country": "CH", "region": "ZH"}),
        ("193.4.0.7", {"jurisdiction": "gdpr", "country": "IS", "region": "1"}),
        ("64.107.0.9", {"jurisdiction": "bipa", "country": "US", "region": "IL"}),
        ("8.8.8.8", {"jurisdiction": "ccpa", "country": "US", "region": "CA"}),
        ("3.0.0.1", {"jurisdiction": "generic", "country": "US", "region": "TX"}),
        ("200.160.0.8", {"jurisdiction": "generic", "country": "BR", "region": "SP"}),
    ],
)
def test_jurisdiction_from_the_client_ip(make_app, city_db, ip, expected):
    response = ask(make_app(GEOIP_DATABASE=str(city_db)), ip)
    assert response.status_code == 200
    assert response.get_json() == {**expected, "source": "geoip"}
    assert response.headers["Cache-Control"] == "no-store"  # derived from the IP


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "::1", "45.0.0.1"])
def test_an_address_the_database_does_not_place_is_generic_not_found(make_app, city_db, ip):
    response = ask(make_app(GEOIP_DATABASE=str(city_db)), ip)
    assert response.status_code == 200
    assert response.get_json() == generic("not_found")


def test_without_a_database_every_client_is_generic_unconfigured(make_app):
    application = make_app()
    assert geoip(application) is None
    response = ask(application, "2.16.0.1")
    assert response.status_code == 200
    assert response.get_json() == generic("unconfigured")
    assert response.headers["Cache-Control"] == "no-store"


def test_trusted_proxy_rules_apply(make_app, city_db):
    behind_proxy = make_app(GEOIP_DATABASE=str(city_db), TRUSTED_PROXIES=1)
    response = ask(behind_proxy, "127.0.0.1", headers={"X-Forwarded-For": "64.107.0.9"})
    assert response.get_json()["jurisdiction"] == "bipa"
    # With no trusted proxy a client cannot pick its jurisdiction by spoofing the header.
    direct = make_app(GEOIP_DATABASE=str(city_db), TRUSTED_PROXIES=0)
    response = ask(direct, "200.160.0.8", headers={"X-Forwarded-For": "2.16.0.1"})
    assert response.get_json()["country"] == "BR"


def test_the_database_is_opened_once_and_shared(make_app, city_db):
    application = make_app(GEOIP_DATABASE=str(city_db))
    opened = geoip(application).reader
    assert ask(application, "2.16.0.1").get_json()["jurisdiction"] == "gdpr"
    assert ask(application, "8.8.8.8").get_json()["jurisdiction"] == "ccpa"
    assert geoip(application).reader is opened
    # One reader answers many threads at once (gunicorn's gthread workers).
    ips = ["2.16.0.1", "64.107.0.9", "8.8.8.8", "200.160.0.8", "10.0.0.1"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda ip: geoip(application).lookup(ip).jurisdiction, ips))
    assert answers == ["gdpr", "bipa", "ccpa", "generic", "generic"] * 40
    assert geoip(application).reader is opened


def test_the_ip_never_reaches_the_log(make_app, city_db):
    application = make_app(GEOIP_DATABASE=str(city_db))
    with app_logs() as logs:
        for ip in ("2.16.0.1", "64.107.0.9", "10.9.8.7", "2a02:2e0::5"):
            assert ask(application, ip).status_code == 200
        logging.getLogger("tests.probe").debug("capture_works")
    text = logs.getvalue()
    assert "capture_works" in text  # the buffer does receive the app's log lines
    for ip in ("2.16.0.1", "64.107.0.9", "10.9.8.7", "2a02:2e0::5"):
        assert ip not in text


def test_a_database_that_fails_at_lookup_answers_unavailable_and_logs_once(make_app, tmp_path):
    path = write_database(tmp_path / "City.mmdb")
    with maxminddb.open_database(str(path)) as reader:
        meta = reader.metadata()
    # Fill the data section (after the search tree and its 16-byte separator)
    # with 0xFF: the metadata still reads, every record is now undecodable; the
    # reader's error message names the address looked up.
    raw = bytearray(path.read_bytes())
    start = meta.node_count * meta.record_size // 4 + 16
    end = raw.rindex(b"\xab\xcd\xefMaxMind.com")
    raw[start:end] = b"\xff" * (end - start)
    path.write_bytes(bytes(raw))

    application = make_app(GEOIP_DATABASE=str(path))
    with app_logs() as logs:
        for _ in range(3):
            response = ask(application, "2.16.0.1")
            assert response.status_code == 200
            assert response.get_json() == generic("unavailable")
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    failures = [line for line in lines if line["event"] == "geoip_database_unreadable"]
    assert len(failures) == 1
    assert failures[0]["path"] == str(path)
    assert "2.16.0.1" not in logs.getvalue()


def test_a_missing_database_refuses_to_start(make_app, tmp_path):
    with pytest.raises(ConfigError, match="GEOIP_DATABASE"):
        make_app(GEOIP_DATABASE=str(tmp_path / "absent.mmdb"))


def test_a_file_that_is_not_a_maxmind_database_refuses_to_start(make_app, tmp_path):
    bogus = tmp_path / "City.mmdb"
    bogus.write_bytes(b"not a database\n" * 100)
    with pytest.raises(ConfigError, match="GEOIP_DATABASE"):
        make_app(GEOIP_DATABASE=str(bogus))


def test_a_country_database_refuses_to_start(make_app, tmp_path):
    # It has no subdivisions: Illinois and California would silently be `generic`.
    country_db = write_database(tmp_path / "Country.mmdb", database_type="GeoLite2-Country")
    with pytest.raises(ConfigError, match=r"GEOIP_DATABASE.*City"):
        make_app(GEOIP_DATABASE=str(country_db))


def test_wsgi_refuses_a_bad_database_with_one_line(embedded_env, tmp_path):
    env = {
        **embedded_env,
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "WARNING",
        "GEOIP_DATABASE": str(tmp_path / "absent.mmdb"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("irisvue: refusing to start: GEOIP_DATABASE=")


def test_openapi_documents_get_jurisdiction(make_app):
    document = make_app().test_client().get("/api/openapi.json").get_json()
    operation = document["paths"][URL]["get"]
    assert operation["operationId"] == "getJurisdiction"
    assert "security" not in operation  # public
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(schema["required"]) == {"jurisdiction", "country", "region", "source"}
    # The shared `Jurisdiction` component, as in every other schema naming one.
    assert schema["properties"]["jurisdiction"]["allOf"] == [
        {"$ref": "#/components/schemas/Jurisdiction"}
    ]
    assert document["components"]["schemas"]["Jurisdiction"]["enum"] == list(JURISDICTIONS)
    assert schema["properties"]["source"]["enum"] == [
        "geoip",
        "not_found",
        "unconfigured",
        "unavailable",
    ]
    assert schema["properties"]["country"]["nullable"] is True
