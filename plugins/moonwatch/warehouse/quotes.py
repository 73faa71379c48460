"""Write consumed quote messages to ``raw.crypto_quotes`` (and the bad ones to ``..._rejected``).

Set-based: valid rows are COPYed into a temporary table, then inserted with
``ON CONFLICT DO NOTHING`` on the natural key, so loading the same message twice (a redelivery
after a crash, a duplicate produce) never makes two rows. The caller owns the transaction and
commits Kafka offsets only after it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from moonwatch.kafka import KafkaRecord
from moonwatch.messages import InvalidMessage, QuoteMessage, parse_quote_message

logger = logging.getLogger(__name__)


@dataclass
class LoadResult:
    """What one batch did: rows new to the table, rows it already had, messages rejected."""

    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def __iadd__(self, other: LoadResult) -> LoadResult:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        return self


def split_valid(
    records: Sequence[KafkaRecord],
) -> tuple[list[tuple[KafkaRecord, QuoteMessage]], list[tuple[KafkaRecord, str]]]:
    """Validate each record; returns (valid pairs, (record, reason) for the rejected)."""
    valid: list[tuple[KafkaRecord, QuoteMessage]] = []
    rejected: list[tuple[KafkaRecord, str]] = []
    for record in records:
        try:
            valid.append((record, parse_quote_message(record.value)))
        except InvalidMessage as e:
            rejected.append((record, e.reason))
    return valid, rejected


def load_quotes_batch(conn: psycopg.Connection, records: Sequence[KafkaRecord]) -> LoadResult:
    """Validate and write one batch inside the caller's transaction."""
    valid, rejected = split_valid(records)
    result = LoadResult(rejected=len(rejected))
    if valid:
        conn.execute(
            "create temporary table if not exists quotes_incoming ("
            " coin_id integer, quote_currency text, last_updated timestamptz, message jsonb,"
            " kafka_topic text, kafka_partition integer, kafka_offset bigint"
            ") on commit delete rows"
        )
        with conn.cursor().copy(
            "copy quotes_incoming (coin_id, quote_currency, last_updated, message,"
            " kafka_topic, kafka_partition, kafka_offset) from stdin"
        ) as copy:
            for record, quote in valid:
                copy.write_row(
                    (
                        quote.coin_id,
                        quote.quote_currency,
                        quote.last_updated,
                        quote.model_dump_json(),
                        record.topic,
                        record.partition,
                        record.offset,
                    )
                )
        # `distinct on` keeps one row per natural key when a batch holds the same quote twice.
        inserted = conn.execute(
            "insert into raw.crypto_quotes (coin_id, quote_currency, last_updated, message,"
            " kafka_topic, kafka_partition, kafka_offset)"
            " select distinct on (coin_id, quote_currency, last_updated) *"
            " from quotes_incoming order by coin_id, quote_currency, last_updated, kafka_offset"
            " on conflict (coin_id, quote_currency, last_updated) do nothing"
        ).rowcount
        result.inserted = inserted
        result.duplicates = len(valid) - inserted
    if rejected:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw.crypto_quotes_rejected (kafka_topic, kafka_partition,"
                " kafka_offset, message_key, message_base64, reason)"
                " values (%s, %s, %s, %s, %s, %s)"
                " on conflict (kafka_topic, kafka_partition, kafka_offset) do nothing",
                [
                    (
                        record.topic,
                        record.partition,
                        record.offset,
                        _printable_key(record.key),
                        None if record.value is None else base64.b64encode(record.value).decode(),
                        reason,
                    )
                    for record, reason in rejected
                ],
            )
        for record, reason in rejected[:5]:
            logger.warning(
                "rejected %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
            )
    return result


def _printable_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    return key.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")[:1000]
