"""Unbound extension objects; `create_app` binds them."""

from __future__ import annotations

from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from irisvue.jwtcache import CachingJWTManager

# Stable constraint names so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# The bind of the per-request token check's autocommit connections (irisvue.auth.tokens).
REVOCATION_BIND = "revocation"
migrate = Migrate()
jwt = CachingJWTManager()  # verified-claims cache: see irisvue/jwtcache.py
cors = CORS()
# Storage, strategy and switches come from app.config (irisvue.auth.ratelimit).
# The client address is request.remote_addr: ProxyFix rewrites it from
# X-Forwarded-For only for TRUSTED_PROXIES hops, so a spoofed header is ignored.
limiter = Limiter(key_func=get_remote_address)
