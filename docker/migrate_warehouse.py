"""One-shot: apply the warehouse's raw-schema migrations (run by the Docker stack's airflow-init).

The same ``moonwatch.warehouse.migrate.apply_migrations`` the local launcher runs after its
bootstrap, as the loader role from ``MOONWATCH_WAREHOUSE_URL``; each file runs once (recorded
in ``raw.schema_migrations``), so this is safe on every ``docker compose up``.

    python docker/migrate_warehouse.py
"""

from __future__ import annotations

import logging
import sys

import psycopg

from moonwatch.errors import MoonwatchError
from moonwatch.settings import load_settings
from moonwatch.warehouse.migrate import apply_migrations


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        url = load_settings().require_warehouse_url()
        with psycopg.connect(url, connect_timeout=10) as conn:
            applied = apply_migrations(conn)
    except (MoonwatchError, psycopg.Error) as e:
        print(f"warehouse migrations failed: {e}", file=sys.stderr)
        return 1
    print(f"warehouse migrations applied: {', '.join(applied) if applied else 'none needed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
