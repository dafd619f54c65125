"""The benchmark's own database: created fresh on DATABASE_URL's PostgreSQL server, migrated, dropped after.

The user's database is never opened. The scratch database carries a comment naming it as ours, and an
existing database without that comment is never dropped, so a name clash cannot destroy real data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from psycopg import sql

MARKER = "afterdesk make bench scratch database: dropped and recreated by every run"
_LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options")


def scratch_name(base: str, suffix: str = "_bench") -> str:
    name = f"{base}{suffix}"
    if len(name.encode()) > 63:  # PostgreSQL truncates identifiers silently; refuse instead
        raise CommandError(
            f"Scratch database name {name!r} is longer than PostgreSQL's 63 bytes; pass --database."
        )
    return name


def database_url(settings_dict: Mapping[str, Any], name: str) -> str:
    """A postgres:// URL for `name` on the same server and role, for subprocesses (the WSGI server)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(name, safe='')}"


def _admin_connection(settings_dict: Mapping[str, Any]) -> psycopg.Connection:
    """A connection to the server's maintenance database, never to the configured one."""
    params: dict[str, Any] = {
        key: value for key, value in settings_dict.get("OPTIONS", {}).items() if key in _LIBPQ_OPTIONS
    }
    for key, param in (("HOST", "host"), ("PORT", "port"), ("USER", "user"), ("PASSWORD", "password")):
        if settings_dict.get(key):
            params[param] = settings_dict[key]
    last_error: Exception | None = None
    for dbname in ("postgres", "template1"):
        try:
            return psycopg.connect(dbname=dbname, autocommit=True, **params)
        except psycopg.OperationalError as exc:
            last_error = exc
    raise CommandError(f"Cannot reach the PostgreSQL server of DATABASE_URL: {last_error}")


def _drop(admin: psycopg.Connection, name: str) -> None:
    force = sql.SQL(" WITH (FORCE)") if admin.info.server_version >= 130000 else sql.SQL("")
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force)


def _drop_if_ours(admin: psycopg.Connection, name: str) -> None:
    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
    ).fetchone()
    if row is None:
        return
    if row[0] != MARKER:
        raise CommandError(
            f"Database {name!r} exists and was not created by make bench; refusing to drop it. "
            "Pass --database with another name."
        )
    _drop(admin, name)


@contextmanager
def scratch_database(name: str, *, keep: bool = False) -> Iterator[str]:
    """Create `name` fresh, point Django's default connection at it and migrate; drop it on the way out.

    Yields the database URL of the scratch database (for subprocesses).
    """
    if connections["default"].vendor != "postgresql":
        raise CommandError(
            "The benchmark's scratch database lives on PostgreSQL; DATABASE_URL is not PostgreSQL."
        )
    settings_dict = connections["default"].settings_dict
    original = settings_dict["NAME"]
    if name == original:
        raise CommandError("The scratch database must not be the configured database.")
    connections.close_all()
    with _admin_connection(settings_dict) as admin:
        _drop_if_ours(admin, name)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(MARKER))
        )
    # Both names point at the same dict today; set both so a Django change cannot leave one behind.
    settings_dict["NAME"] = name
    settings.DATABASES["default"]["NAME"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield database_url(settings_dict, name)
    finally:
        connections.close_all()
        settings_dict["NAME"] = original
        settings.DATABASES["default"]["NAME"] = original
        if not keep:
            with _admin_connection(settings_dict) as admin:
                _drop(admin, name)


def scratch_reset() -> None:
    """Empty every table between sections (sections build their own data)."""
    call_command("flush", verbosity=0, interactive=False)
