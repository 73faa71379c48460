"""Consume quote messages from Kafka and load them into Postgres, losing and doubling nothing.

Order per batch: consume → validate → write valid and rejected rows → COMMIT Postgres → commit
Kafka offsets. A crash before the Postgres commit leaves nothing half-written and the offsets
untouched (the batch is re-read); a crash between the two commits re-reads a batch that is
already stored, and the natural-key upsert turns it into zero new rows.

Two stages overlap: the main thread consumes, validates and formats batch k+1 while one writer
thread (``OrderedThread``) writes and commits batch k in Postgres. It hands batches back in
order and the main thread commits each one's offsets only then, so the order above holds for
every batch.
The first failure in either stage stops both; batches not yet offset-committed are re-read.

Several loaders can run at once in one consumer group, each on its share of the partitions.
The order above holds per loader, so a loader that dies (or loses a partition to a rebalance)
mid-batch leaves only uncommitted offsets behind: the partition's next holder re-reads them,
and the natural-key upsert turns what was already stored into duplicates, not rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import psycopg
from confluent_kafka import Consumer

from moonwatch.errors import WarehouseError
from moonwatch.kafka import (
    GroupState,
    commit_offsets,
    consume_batches,
    member_idle_s,
    open_consumer,
    wait_for_assignment,
)
from moonwatch.ordered_thread import OrderedThread
from moonwatch.warehouse.quotes import (
    LoadResult,
    PreparedBatch,
    prepare_batch,
    write_prepared_batch,
)

logger = logging.getLogger(__name__)


def consume_and_load(
    bootstrap: str,
    topic: str,
    group_id: str,
    warehouse_url: str,
    batch_size: int = 5000,
    idle_s: float = 1.0,
    max_messages: int | None = 200_000,
    consumer_overrides: dict | None = None,
    loaders: int = 1,
    member: int = 0,
) -> dict[str, Any]:
    """Load everything waiting on ``topic`` (until idle or ``max_messages``); returns counts,
    and ``partitions``: the partitions the group gave this loader (its share).

    ``idle_s`` is short on purpose: the DAG's Asset event, and so the dbt build, waits for this
    function to return. A producer's minute of quotes arrives within a fraction of a second,
    and anything later wakes the sensor of the next continuous run.

    ``loaders`` is how many loaders run at once, ``member`` this one's index (0..N-1). One
    alone reads every partition without joining the group; several share them as the
    group's members, and each waits ``LEAVE_GAP_S`` longer than the one before it, so they
    leave the group one rebalance apart (``moonwatch.kafka``).
    """
    started = time.monotonic()
    total = LoadResult()
    batches = 0
    try:
        conn = psycopg.connect(
            warehouse_url, connect_timeout=10, application_name="moonwatch-loader"
        )
    except psycopg.OperationalError as e:
        raise WarehouseError(
            f"cannot connect to the warehouse ({_brief(e)}). Nothing was consumed or committed; "
            "check PostgreSQL with `make status` — the next run loads everything waiting."
        ) from None
    consumer = open_consumer(
        bootstrap, group_id, topic, alone=loaders == 1, **(consumer_overrides or {})
    )
    writer: OrderedThread[PreparedBatch, LoadResult] = OrderedThread(
        lambda batch: _write(conn, batch), depth=1, name="moonwatch-loader-writer"
    )
    try:
        wait_for_assignment(consumer)
        # Idle polls come as empty batches: a stored batch's offsets are committed within a
        # poll of its Postgres commit, not after the idle wait. A loader that then dies, or
        # leaves and so hands its partitions to another, leaves nothing to re-read.
        for batch in consume_batches(
            consumer, batch_size, member_idle_s(idle_s, member), max_messages, yield_idle=True
        ):
            if batch:
                writer.submit(prepare_batch(batch))  # raises the writer's error, if any
            batches += _commit_in_order(consumer, writer.completed(), total)
        batches += _commit_in_order(consumer, writer.join(), total)
    finally:
        writer.cancel()  # before closing the connection it writes on
        consumer.close()
        conn.close()
    group = getattr(consumer, "group", None)
    held = sorted(group.held) if isinstance(group, GroupState) else []
    counts = {**asdict(total), "batches": batches, "partitions": held}
    logger.info(
        "loaded %(inserted)d new quotes, %(duplicates)d already stored, %(rejected)d rejected "
        "in %(batches)d batches from partitions %(partitions)s",
        counts,
        extra={"elapsed_s": round(time.monotonic() - started, 3)},
    )
    return counts


def _commit_in_order(
    consumer: Consumer, finished: list[tuple[PreparedBatch, LoadResult]], total: LoadResult
) -> int:
    """Commit the offsets of batches already committed in Postgres, oldest first; count them."""
    for batch, result in finished:
        commit_offsets(consumer, batch.records)
        total += result
    return len(finished)


def _write(conn: psycopg.Connection, batch: PreparedBatch) -> LoadResult:
    """The writer thread's step: one batch, one Postgres transaction."""
    try:
        with conn.transaction():
            return write_prepared_batch(conn, batch)
    except psycopg.OperationalError as e:
        raise WarehouseError(
            f"the warehouse failed mid-load ({_brief(e)}); the batch was rolled back and "
            "no Kafka offset was committed for it, so the next run loads it again"
        ) from None


def _brief(error: Exception) -> str:
    # Driver messages can include the connection string's host and user but never the password;
    # keep only the first line so logs stay readable.
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
