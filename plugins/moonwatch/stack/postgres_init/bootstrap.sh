#!/usr/bin/env bash
# Roles, databases, schemas and grants of the warehouse's PostgreSQL: the one bootstrap both the
# local launcher (moonwatch.stack.postgres.bootstrap_warehouse) and Docker's `postgres-init`
# one-shot run. Safe to run on every start, so a changed password takes effect. Passwords come
# from the environment only (read with psql's \getenv, never on a command line). The raw schema's
# tables come afterwards from moonwatch.warehouse.migrate (both modes).
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
