"""Rebuilding a view keeps the views built on it (dbt_project/macros/materializations/view.sql).

dbt's own view materialization swaps a new view in and drops the old one with CASCADE, which
in Postgres drops the dependent views too (marts.pipeline_health on staging.stg_crypto_quotes,
every per-minute build). Real dbt on the real warehouse.
"""

from __future__ import annotations

import psycopg

from moonwatch.dbt.cosmos import QUOTES_SELECTION


def _oid(conn: psycopg.Connection, relation: str) -> int | None:
    return conn.execute("select to_regclass(%s)::oid", (relation,)).fetchone()[0]


def test_rebuilding_a_staging_view_keeps_the_mart_view_built_on_it(dbt, warehouse) -> None:
    dbt("run", "--select", *QUOTES_SELECTION)
    staged = _oid(warehouse, "staging.stg_crypto_quotes")
    health = _oid(warehouse, "marts.pipeline_health")
    assert staged is not None and health is not None
    assert warehouse.execute(
        "select count(*) from pg_depend d join pg_rewrite r on r.oid = d.objid"
        " where r.ev_class = %s and d.refobjid = %s",
        (health, staged),
    ).fetchone()[0], "pipeline_health no longer reads stg_crypto_quotes: pick another pair"

    # The staging view alone, as any build that reaches it before pipeline_health does.
    result = dbt("run", "--select", "stg_crypto_quotes")

    assert "OK created sql view model staging.stg_crypto_quotes" in result.output
    assert _oid(warehouse, "staging.stg_crypto_quotes") == staged  # replaced, not swapped
    assert _oid(warehouse, "marts.pipeline_health") == health  # still there, never dropped
    assert warehouse.execute("select count(*) from marts.pipeline_health").fetchone()[0] > 0


def test_a_view_whose_columns_changed_is_rebuilt_the_default_way(dbt, warehouse) -> None:
    """Postgres cannot replace a view whose query drops a column; that view is swapped as dbt
    does by default (its dependents are dropped until their own nodes run) and the build
    goes on, with the model's columns."""
    dbt("run", "--select", "stg_crypto_quotes_rejected")
    view = "staging.stg_crypto_quotes_rejected"
    definition = warehouse.execute("select pg_get_viewdef(%s::regclass)", (view,)).fetchone()[0]
    # The view as an older version of the model might have left it: one column more.
    warehouse.execute(
        f"create or replace view {view} as select * from ({definition.rstrip().rstrip(';')})"
        " as current_model cross join (select 1 as a_dropped_column) as older"
    )
    before = _oid(warehouse, view)

    result = dbt("run", "--select", "stg_crypto_quotes_rejected")

    assert f"Cannot replace {_quoted(view)} in place (its columns changed)" in result.output
    assert _oid(warehouse, view) != before
    columns = [
        name
        for (name,) in warehouse.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'staging' and table_name = 'stg_crypto_quotes_rejected'"
        )
    ]
    assert "a_dropped_column" not in columns and "rejection_reason" in columns


def _quoted(relation: str) -> str:
    schema, name = relation.split(".")
    return f'"moonwatch"."{schema}"."{name}"'
