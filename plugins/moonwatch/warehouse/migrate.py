"""Plain-SQL migrations for the warehouse's ``raw`` schema, applied in order, once each.

Each file in ``migrations/`` is ``NNNN_name.sql``; ``raw.schema_migrations`` records what ran.
An advisory lock makes concurrent starts (launcher and tests) apply each file exactly once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_ID = 0x6D6F6F6E  # "moon"


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute("create schema if not exists raw")
        conn.execute(
            "create table if not exists raw.schema_migrations ("
            " name text primary key, applied_at timestamptz not null default now())"
        )
        done = {row[0] for row in conn.execute("select name from raw.schema_migrations")}
        for path in migration_files():
            if path.name in done:
                continue
            logger.info("applying warehouse migration %s", path.name)
            conn.execute(path.read_text())
            conn.execute("insert into raw.schema_migrations (name) values (%s)", (path.name,))
            applied_now.append(path.name)
    return applied_now
