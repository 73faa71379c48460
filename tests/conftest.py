"""Session-wide throw-away services: one private stack config per test run.

At configure time the run gets its own home folder and free ports, and the process environment
points Airflow and Moonwatch at them, before anything imports Airflow (which reads its config
at import). The services themselves start lazily, once, the first time a test asks for them,
and stop at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from moonwatch.stack import broker, postgres
from moonwatch.stack.airflow import airflow_env, migrate_metadata_db
from moonwatch.stack.config import StackConfig
from moonwatch.stack.process import free_port

_STACK: StackConfig | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _STACK
    home = Path(tempfile.mkdtemp(prefix="moonwatch-test-"))
    env = {
        "MOONWATCH_HOME": str(home),
        "MOONWATCH_PG_PORT": str(free_port()),
        "MOONWATCH_KAFKA_PORT": str(free_port()),
        "MOONWATCH_AIRFLOW_PORT": str(free_port()),
        "MOONWATCH_DASHBOARD_PORT": str(free_port()),
        "MOONWATCH_SIM_PORT": str(free_port()),
    }
    # Outside settings (a developer's `eval "$(make -s env)"`) must not leak into the tests.
    for name in list(os.environ):
        if name.startswith(("MOONWATCH_", "AIRFLOW_", "AIRFLOW__", "CMC_")):
            del os.environ[name]
    os.environ.update(env)
    _STACK = StackConfig.from_env()
    os.environ.update({k: v for k, v in airflow_env(_STACK).items() if k not in ("PATH",)})
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STACK is None:
        return
    import sys

    from moonwatch.stack.cli import down

    if "airflow.settings" in sys.modules:
        # Close Airflow's pooled connections before their server goes away.
        sys.modules["airflow.settings"].dispose_orm()
    down(_STACK)
    if not os.environ.get("MOONWATCH_KEEP_TEST_HOME"):
        shutil.rmtree(_STACK.home, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> StackConfig:
    assert _STACK is not None
    return _STACK


@pytest.fixture(scope="session")
def pg(stack: StackConfig) -> StackConfig:
    """A real PostgreSQL with the warehouse bootstrapped (roles, schemas, raw migrations)."""
    postgres.start_postgres(stack)
    postgres.bootstrap_warehouse(stack)
    return stack


@pytest.fixture(scope="session")
def warehouse_url(pg: StackConfig) -> str:
    return pg.warehouse_url


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[psycopg.Connection]:
    """A loader-role connection; the raw tables are emptied before each test."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "truncate raw.crypto_quotes, raw.crypto_quotes_rejected, raw.crypto_listings, "
            "raw.fx_rates"
        )
        yield conn


@pytest.fixture(scope="session")
def kafka(stack: StackConfig) -> str:
    """Bootstrap servers of a real Kafka-protocol broker (tansu)."""
    broker.start_broker(stack)
    return stack.kafka_bootstrap


@pytest.fixture
def make_topic(kafka: str) -> Callable[[], str]:
    """Factory: a fresh topic per call, so tests never see each other's messages."""

    def _make() -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        broker.ensure_topic(kafka, name)
        return name

    return _make


@pytest.fixture(scope="session")
def airflow_db(pg: StackConfig) -> StackConfig:
    """Airflow's metadata database migrated in the test Postgres, for `dag.test()` runs."""
    migrate_metadata_db(pg)
    return pg


from tests.simulator import market_simulator, simulator_env  # noqa: E402, F401
