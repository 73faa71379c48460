"""The dashboard's role reads ``marts`` and nothing else: no raw or staging data, no credit ledger,
no writes, no temporary tables, no other database, no way to become another role.

Complements tests/stack/test_launcher.py::test_dashboard_role_reads_marts_only_and_writes_nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from moonwatch.stack.config import AIRFLOW_DB, DASHBOARD_ROLE, LOADER_ROLE, StackConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def probes(pg: StackConfig) -> Iterator[None]:
    """A table in staging and one in marts, made by the loader (their owner in production)."""
    with psycopg.connect(pg.warehouse_url, autocommit=True) as loader:
        loader.execute("create table if not exists staging.sec_probe (id int)")
        loader.execute("create table if not exists marts.sec_probe (id int)")
        loader.execute("truncate marts.sec_probe")
        loader.execute("insert into marts.sec_probe values (1)")
    yield
    with psycopg.connect(pg.warehouse_url, autocommit=True) as loader:
        loader.execute("drop table if exists staging.sec_probe, marts.sec_probe")


@pytest.fixture
def reader(pg: StackConfig, probes: None) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg.dashboard_db_url, autocommit=True) as conn:
        yield conn


def _denied(conn: psycopg.Connection, statement: str) -> str:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(statement)
    return raised.value.sqlstate or ""


def test_dashboard_reads_marts(reader: psycopg.Connection) -> None:
    assert reader.execute("select id from marts.sec_probe").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "table",
    [
        "raw.crypto_quotes",
        "raw.crypto_quotes_rejected",
        "raw.crypto_listings",
        "raw.fx_rates",
        "raw.cmc_credit_ledger",
        "raw.schema_migrations",
        "staging.sec_probe",
    ],
)
def test_dashboard_cannot_read_outside_marts(reader: psycopg.Connection, table: str) -> None:
    # 42501 insufficient_privilege: no usage on the schema, so not even the table's existence.
    assert _denied(reader, f"select * from {table} limit 1") == "42501"


@pytest.mark.parametrize(
    "statement",
    [
        "insert into marts.sec_probe values (2)",
        "update marts.sec_probe set id = 3",
        "delete from marts.sec_probe",
        "truncate marts.sec_probe",
        "create table marts.intruder (id int)",
        "create view marts.intruder as select 1",
        "create function marts.intruder() returns int language sql as 'select 1'",
        "create table public.intruder (id int)",
        "create table raw.intruder (id int)",
        "create schema intruder",
        "alter table marts.sec_probe add column x int",
        "drop table marts.sec_probe",
        "insert into raw.cmc_credit_ledger (month, credits) values ('2099-01', 0)",
    ],
)
def test_dashboard_cannot_write_or_create(reader: psycopg.Connection, statement: str) -> None:
    # Read-only transactions (25006) or missing privilege (42501): either way nothing changes.
    assert _denied(reader, statement) in ("25006", "42501")
    # The role may turn its read-only default off; privileges still stop the write.
    reader.execute("set default_transaction_read_only = off")
    assert _denied(reader, statement) == "42501"


def test_dashboard_cannot_grant_what_it_has(reader: psycopg.Connection) -> None:
    # A grant without grant option is a warning ("no privileges were granted"), not an error.
    reader.execute("set default_transaction_read_only = off")
    reader.execute("grant select on marts.sec_probe to public")
    assert not reader.execute(
        "select has_table_privilege('public', 'marts.sec_probe', 'select')"
    ).fetchone()[0]


def test_dashboard_cannot_create_temporary_tables(reader: psycopg.Connection) -> None:
    # TEMP is granted to PUBLIC by default; the launcher revokes it on the warehouse database.
    assert _denied(reader, "create temporary table scratch (id int)") in ("25006", "42501")
    reader.execute("set default_transaction_read_only = off")
    assert _denied(reader, "create temporary table scratch (id int)") == "42501"
    assert not reader.execute(
        "select has_database_privilege(current_user, current_database(), 'TEMP')"
    ).fetchone()[0]


def test_dashboard_cannot_escalate(reader: psycopg.Connection) -> None:
    for target in (LOADER_ROLE, "moonwatch_admin", "postgres", "airflow"):
        assert _denied(reader, f"set role {target}") in ("42501", "22023", "42704")
        assert _denied(reader, f"set session authorization {target}") in ("42501", "22023")
    flags = reader.execute(
        "select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit"
        " and exists (select 1 from pg_auth_members m where m.member = r.oid)"
        " from pg_roles r where rolname = current_user"
    ).fetchone()
    assert flags == (False, False, False, False, False, False)
    assert reader.execute("select current_user").fetchone() == (DASHBOARD_ROLE,)
    for statement in (
        "copy (select 1) to program 'id'",
        "copy marts.sec_probe from '/etc/passwd'",
        "select pg_read_file('/etc/passwd')",
        "select lo_import('/etc/passwd')",
        "create extension dblink",
        "alter role current_user set default_transaction_read_only = off",
        f"alter role {DASHBOARD_ROLE} superuser",
    ):
        assert _denied(reader, statement) in ("42501", "25006", "0A000", "58P01"), statement


def test_dashboard_cannot_see_other_sessions_queries(
    pg: StackConfig, reader: psycopg.Connection
) -> None:
    with psycopg.connect(pg.warehouse_url, autocommit=True) as loader:
        loader.execute("select 'secret-probe-text', pg_sleep(0)")
        rows = reader.execute(
            "select query from pg_stat_activity where usename = %s", (LOADER_ROLE,)
        ).fetchall()
    assert rows and all("secret-probe-text" not in (q or "") for (q,) in rows)


@pytest.mark.parametrize("database", [AIRFLOW_DB, "postgres", "template1"])
def test_dashboard_cannot_connect_to_other_databases(pg: StackConfig, database: str) -> None:
    url = pg.dashboard_db_url.rsplit("/", 1)[0] + f"/{database}"
    with pytest.raises(
        psycopg.OperationalError, match=r"permission denied|not currently accepting"
    ):
        psycopg.connect(url, connect_timeout=5).close()
