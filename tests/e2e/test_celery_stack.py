"""End to end under the CeleryExecutor (MOONWATCH_EXECUTOR=celery): Redis and two Celery
workers, each in its own folder, run the same DAGs; every produced quote lands once in the marts.

Lean on purpose (CI runs everything in 90 minutes): one stack, no browser. The LocalExecutor's
end-to-end test (test_full_stack.py) covers the dashboard and the docs; this one covers what
changes with a distributed executor: tasks on two workers that share no working folder, the
loader on a partitioned topic, and the transform, listings and FX runs succeeding there.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from moonwatch.settings import Settings
from moonwatch.stack import celery_executor
from moonwatch.stack.broker import unloaded_messages
from moonwatch.stack.config import StackConfig
from moonwatch.stack.ephemeral import ephemeral_stack, leftovers, live_pids
from tests.chaos.harness import (
    Ledger,
    assert_exactly_once,
    minute_stamp,
    set_paused,
    synthetic_quotes,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]

WAIT_S = 900
SYNTHETIC_COINS = 30  # keyed by coin id: spread over every partition
PARTITIONS = 3


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _metadata(config: StackConfig, query: str) -> list[tuple]:
    url = config.airflow_db_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _marts_copies(config: StackConfig, ledger: Ledger) -> dict[tuple, int]:
    """marts.quotes_coins rows per natural key, for the ledger's coins and minutes."""
    coins, minutes = ledger.coin_range(), sorted({key[2] for key in ledger.sent})
    with psycopg.connect(config.warehouse_url) as conn:
        rows = conn.execute(
            "select coin_id, quote_currency, last_updated_at, count(*) from marts.quotes_coins"
            " where coin_id between %s and %s and last_updated_at = any(%s) group by 1, 2, 3",
            (coins.start, coins.stop - 1, minutes),
        ).fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def _simulator_keys(config: StackConfig, table: str, column: str) -> list[tuple]:
    """Every simulator quote's natural key in ``table`` (a key may appear more than once)."""
    with psycopg.connect(config.warehouse_url) as conn:
        return conn.execute(
            f"select coin_id, quote_currency, {column} from {table}"
            " where source = 'simulator' and coin_id < 900000 order by 1, 2, 3"
        ).fetchall()


def _succeeded(config: StackConfig, dag_id: str) -> bool:
    return bool(
        _metadata(config, f"select 1 from dag_run where dag_id = '{dag_id}' and state = 'success'")
    )


def test_celery_two_workers_load_every_quote_once_into_the_marts() -> None:
    with ephemeral_stack(
        MOONWATCH_EXECUTOR="celery",
        MOONWATCH_SYMBOLS="BTC,ETH,SOL",
        MOONWATCH_TOPIC_PARTITIONS=str(PARTITIONS),
    ) as (config, _env):
        pids = live_pids(config)
        workers = {w: pids[f"celery-{w}"] for w in celery_executor.WORKERS}
        assert "redis" in pids
        redis_password = config.secrets["MOONWATCH_REDIS_PASSWORD"].encode()
        for worker, pid in workers.items():
            # Its own folder, as on its own machine; no metadata URL, no signing key.
            assert Path(f"/proc/{pid}/cwd").resolve() == config.celery_worker_dir(worker)
            environ = _environ(pid)
            assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in environ
            text = "\n".join(environ.values())
            assert config.secrets["MOONWATCH_AIRFLOW_SECRET_KEY"] not in text
            assert config.secrets["MOONWATCH_PG_ADMIN_PASSWORD"] not in text
        for name, pid in pids.items():
            assert redis_password not in Path(f"/proc/{pid}/cmdline").read_bytes(), name
        if "topic_partitions" in Settings.model_fields:  # the partitioned topic has landed
            from confluent_kafka.admin import AdminClient

            topics = AdminClient({"bootstrap.servers": config.kafka_bootstrap}).list_topics(
                timeout=10
            )
            assert len(topics.topics[config.topic].partitions) == PARTITIONS

        # Quotes produced beside the simulator's, each acknowledged: each lands once in raw...
        ledger = Ledger()
        ledger.produce(config, synthetic_quotes(0, SYNTHETIC_COINS, minute_stamp(7)))
        assert_exactly_once(config, ledger, timeout=WAIT_S)
        # ...and once in marts.quotes_coins, built by dbt on a worker.
        wait_for(
            lambda: len(_marts_copies(config, ledger)) == len(ledger.sent),
            f"all {len(ledger.sent)} produced quotes in marts.quotes_coins",
            timeout=WAIT_S,
            every=5,
        )
        copies = _marts_copies(config, ledger)
        assert set(copies) == set(ledger.sent)
        assert set(copies.values()) == {1}, "a quote is in the marts more than once"

        # The simulator's own quotes: stop producing, let the loader drain the topic and the
        # transform catch up; then the marts hold exactly the quotes raw holds, once each.
        wait_for(
            lambda: (
                len({k[2] for k in _simulator_keys(config, "raw.crypto_quotes", "last_updated")})
                >= 2
            ),
            "two of the simulator's minutes in raw",
            timeout=WAIT_S,
            every=5,
        )
        set_paused(config, "crypto_quotes_produce", True)
        wait_for(
            lambda: (
                not _metadata(
                    config,
                    "select 1 from dag_run where dag_id = 'crypto_quotes_produce'"
                    " and state in ('queued', 'running')",
                )
                and unloaded_messages(config.kafka_bootstrap, config.topic, config.consumer_group)
                == 0
            ),
            "the producer to stop and the loader to drain the topic",
            timeout=WAIT_S,
        )
        raw = _simulator_keys(config, "raw.crypto_quotes", "last_updated")
        wait_for(
            lambda: _simulator_keys(config, "marts.quotes_coins", "last_updated_at") == raw,
            f"the simulator's {len(raw)} quotes in marts.quotes_coins, once each",
            timeout=WAIT_S,
            every=5,
        )

        # Listings, FX and the reference marts ran on the workers too.
        for dag_id in ("crypto_listings_load", "crypto_fx_load", "crypto_transform_reference"):
            wait_for(lambda d=dag_id: _succeeded(config, d), f"a successful {dag_id} run", WAIT_S)
        # Both workers ran tasks (each names itself as its task instances' hostname).
        hosts = {
            host
            for (host,) in _metadata(
                config, "select distinct hostname from task_instance where state = 'success'"
            )
        }
        for worker in celery_executor.WORKERS:
            assert any(h.endswith(f"-{worker}") for h in hosts), (worker, hosts)
        failed = _metadata(
            config,
            "select dag_id, task_id, hostname from task_instance where state = 'failed'",
        )
        assert not failed, f"tasks failed under the CeleryExecutor: {failed}"
    assert leftovers(config, pids) == []
