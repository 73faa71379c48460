#!/usr/bin/env bash
# Roles, databases, schemas and grants of the Docker stack's PostgreSQL, mirroring
# plugins/moonwatch/stack/postgres.py (bootstrap_warehouse). Like it, safe to run on every start:
# the `postgres-init` one-shot service runs it after each `docker compose up`, so a password
# changed in .env takes effect. Passwords come from the environment only (read with psql's
# \getenv, never on a command line). The raw schema's tables are created afterwards by
# airflow-init (docker/migrate_warehouse.py, the same migrations the local launcher applies).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${MOONWATCH_PG_ADMIN_PASSWORD:?set MOONWATCH_PG_ADMIN_PASSWORD}"
: "${MOONWATCH_LOADER_PASSWORD:?set MOONWATCH_LOADER_PASSWORD}"
: "${MOONWATCH_DASHBOARD_PASSWORD:?set MOONWATCH_DASHBOARD_PASSWORD}"
: "${MOONWATCH_AIRFLOW_DB_PASSWORD:?set MOONWATCH_AIRFLOW_DB_PASSWORD}"

export PGHOST="${PGHOST:-postgres}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-moonwatch_admin}"
export PGPASSWORD="$MOONWATCH_PG_ADMIN_PASSWORD"

psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --dbname postgres \
    --file "$here/01-roles-databases.sql"
psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --dbname moonwatch \
    --file "$here/02-warehouse-schemas.sql"
echo "moonwatch: roles, databases, schemas and grants are in place on $PGHOST:$PGPORT"
