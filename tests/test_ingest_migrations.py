"""Migration 0003 on a warehouse that already holds rows: keys gain ``source``, nothing is lost.

Runs the raw migrations on a fresh database of the real test server, with rows written the way
the loader wrote them before 0003, then applies 0003 twice.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from moonwatch.stack.config import StackConfig
from moonwatch.warehouse.migrate import migration_files
from tests.factories import quote_message

pytestmark = pytest.mark.integration


def _file(prefix: str) -> str:
    [path] = [p for p in migration_files() if p.name.startswith(prefix)]
    return path.read_text()


@pytest.fixture
def old_warehouse(pg: StackConfig) -> Iterator[psycopg.Connection]:
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = pg.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_file("0001"))
            conn.execute(_file("0002"))
            yield conn
    finally:
        with psycopg.connect(pg.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def test_migration_0003_backfills_source_and_keeps_every_row(
    old_warehouse: psycopg.Connection,
) -> None:
    conn = old_warehouse
    simulated = quote_message(coin_id=1, minute=0)
    conn.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset) values (1, 'USD', %s, %s, 't', 0, 0)",
        (simulated.last_updated, simulated.model_dump_json()),
    )
    conn.execute(
        "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset,"
        " message_key, message_base64, reason) values ('t', 0, 1, 'k', %s, 'not JSON')",
        (base64.b64encode(b"junk").decode(),),
    )
    conn.execute(_file("0003"))
    conn.execute(_file("0003"))  # idempotent

    assert conn.execute("select source, coin_id from raw.crypto_quotes").fetchall() == [
        ("simulator", 1)
    ]
    # The same coin and minute from the real API is a second row now, not a silent conflict.
    real = simulated.model_copy(update={"source": "coinmarketcap"})
    conn.execute(
        "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
        " kafka_topic, kafka_partition, kafka_offset) values (1, 'USD', %s, %s, 't', 0, 2)",
        (real.last_updated, real.model_dump_json()),
    )
    assert conn.execute("select count(*) from raw.crypto_quotes").fetchone() == (2,)
    # A different bad message at the rejected row's offset is kept; the same one, re-read by
    # the new loader (which records its length), is not doubled.
    for value in (b"junk", b"other junk"):
        conn.execute(
            "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition, kafka_offset,"
            " message_key, message_base64, message_bytes, reason)"
            " values ('t', 0, 1, 'k', %s, %s, 'not JSON')"
            " on conflict (kafka_topic, kafka_partition, kafka_offset, content_sha256)"
            " do nothing",
            (base64.b64encode(value).decode(), len(value)),
        )
    assert conn.execute("select count(*) from raw.crypto_quotes_rejected").fetchone() == (2,)
    keys = conn.execute(
        "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint"
        " where contype = 'p' and connamespace = 'raw'::regnamespace order by 1"
    ).fetchall()
    assert dict(keys) == {
        "raw.cmc_credit_ledger": "PRIMARY KEY (month)",
        "raw.crypto_listings": "PRIMARY KEY (source, snapshot_at, coin_id)",
        "raw.crypto_listings_rejected": "PRIMARY KEY (rejected_id)",
        "raw.crypto_quotes": "PRIMARY KEY (source, coin_id, quote_currency, last_updated)",
        "raw.crypto_quotes_rejected": "PRIMARY KEY (rejected_id)",
        "raw.fx_rates": "PRIMARY KEY (source, as_of_date, currency)",
        "raw.fx_rates_rejected": "PRIMARY KEY (rejected_id)",
    }
