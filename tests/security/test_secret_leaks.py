"""The CoinMarketCap key never leaves the process that uses it: not in a log line, an exception,
an XCom, a rendered template, a Kafka message or a warehouse row.

The producer DAG runs for real (``dag.test()``: real metadata DB, real broker, real warehouse)
with a unique marker key against the simulator (told to insist on a key, so the key provably
went out on the wire), then everything the run left behind is searched for the marker. The
failure path does the same with a server that refuses the key and echoes it back.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from moonwatch.errors import SourceRejectedError
from moonwatch.kafka import consume_batches, open_consumer, wait_for_assignment
from moonwatch.pipeline import fetch_and_produce_quotes
from moonwatch.settings import load_settings
from moonwatch.sources.credits import InMemoryLedgerStore
from moonwatch.sources.simulator import SimulatorServer
from moonwatch.stack.config import StackConfig
from moonwatch.warehouse.quotes import prepare_batch, write_prepared_batch
from tests.sources.support import Canned, ReplayServer, cmc_body

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


def _load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


@pytest.fixture
def marker() -> str:
    return f"cmc-marker-{uuid.uuid4().hex}"


def _pieces(secret: str) -> list[str]:
    """The secret and its 12-character pieces: a truncated key is still a leak."""
    return [secret] + [secret[i : i + 12] for i in range(0, len(secret) - 11, 4)]


def assert_absent(secret: str, where: str, text: str | bytes) -> None:
    data = text if isinstance(text, str) else text.decode("utf-8", "replace")
    found = [p for p in _pieces(secret) if p in data]
    assert not found, f"a secret leaked into {where}: ...{data[data.find(found[0]) - 80 :][:200]}"


def _metadata_url() -> str:
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "", 1)


def scan_database(url: str, secret: str, schemas: tuple[str, ...]) -> int:
    """Search every row of every table in ``schemas`` for the secret; returns tables searched."""
    searched = 0
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema = any(%s) and table_type = 'BASE TABLE'",
            (list(schemas),),
        ).fetchall()
        for schema, table in tables:
            ident = sql.Identifier(schema, table)
            for piece in _pieces(secret):
                hit = conn.execute(
                    sql.SQL(
                        "select left(t::text, 300) from {} t where t::text like %s limit 1"
                    ).format(ident),
                    (f"%{piece}%",),
                ).fetchone()
                assert hit is None, f"a secret leaked into {schema}.{table}: {hit[0]}"
            searched += 1
    return searched


def scan_airflow(secret: str, dag_id: str) -> None:
    """Task logs on disk, XComs, rendered template fields and every other metadata table."""
    folder = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    for path in folder.rglob("*") if folder.exists() else []:
        if path.is_file():
            assert_absent(secret, f"Airflow log {path}", path.read_bytes())
    with psycopg.connect(_metadata_url(), autocommit=True) as conn:
        xcoms = conn.execute(
            "select key, value::text from xcom where dag_id = %s", (dag_id,)
        ).fetchall()
        rendered = conn.execute(
            "select rendered_fields::text from rendered_task_instance_fields where dag_id = %s",
            (dag_id,),
        ).fetchall()
    for key, value in xcoms:
        assert_absent(secret, f"XCom {key}", value or "")
    for (fields,) in rendered:
        assert_absent(secret, "rendered template fields", fields or "")
    assert scan_database(_metadata_url(), secret, ("public",)) > 20


def read_topic(bootstrap: str, topic: str) -> list:
    consumer = open_consumer(bootstrap, f"leakscan-{uuid.uuid4().hex[:8]}", topic)
    try:
        wait_for_assignment(consumer)
        return [r for batch in consume_batches(consumer, idle_s=2.0) for r in batch]
    finally:
        consumer.close()


@pytest.fixture
def keyed_env(
    airflow_db: StackConfig,
    simulator_env: SimulatorServer,
    make_topic: Callable[[], str],
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    marker: str,
) -> Iterator[str]:
    """Settings with the marker as the CoinMarketCap key; the credit ledger is put back after."""
    topic = make_topic()
    monkeypatch.setenv("CMC_API_KEY", marker)
    monkeypatch.setenv("MOONWATCH_CMC_MONTHLY_CREDITS", "100000000")
    monkeypatch.setenv("MOONWATCH_TOPIC", topic)
    monkeypatch.setenv("MOONWATCH_SYMBOLS", "BTC,ETH,id:5426")
    monkeypatch.setenv("MOONWATCH_WAREHOUSE_URL", airflow_db.warehouse_url)
    ledger = warehouse.execute("select month, credits from raw.cmc_credit_ledger").fetchall()
    yield topic
    with warehouse.transaction():
        warehouse.execute("delete from raw.cmc_credit_ledger")
        for month, credits in ledger:
            warehouse.execute(
                "insert into raw.cmc_credit_ledger (month, credits) values (%s, %s)",
                (month, credits),
            )


def test_producer_dag_run_leaks_the_key_nowhere(
    keyed_env: str,
    airflow_db: StackConfig,
    simulator_env: SimulatorServer,
    kafka: str,
    warehouse: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    marker: str,
) -> None:
    topic = keyed_env
    caplog.set_level(logging.DEBUG)
    with simulator_env.lock:
        simulator_env.require_key = True  # a request without the key header gets error 1002
    try:
        run = _load_dag("crypto_quotes_produce").test()
    finally:
        with simulator_env.lock:
            simulator_env.require_key = False
    assert run.state == "success"

    # Kafka: every key and value of the topic, then the same records through the loader.
    records = read_topic(kafka, topic)
    assert len(records) == 3
    for record in records:
        assert_absent(marker, "a Kafka key", record.key or b"")
        assert_absent(marker, "a Kafka message", record.value or b"")
        assert b'"source":"coinmarketcap"' in record.value  # the key was in use
    with warehouse.transaction():
        assert write_prepared_batch(warehouse, prepare_batch(records)).inserted == 3
    assert warehouse.execute("select sum(credits) from raw.cmc_credit_ledger").fetchone()[0] > 0
    assert scan_database(airflow_db_url(warehouse), marker, ("raw", "staging", "marts")) >= 5

    scan_airflow(marker, "crypto_quotes_produce")
    xcom = _produce_xcom()
    assert xcom and "delivered" in xcom  # the XCom scanned above is the run's real summary

    captured = capfd.readouterr()
    assert_absent(marker, "stdout", captured.out)
    assert_absent(marker, "stderr", captured.err)
    assert_absent(marker, "log records", caplog.text)
    for record in caplog.records:
        assert_absent(marker, f"log record of {record.name}", record.getMessage())
    seen = caplog.text + captured.out + captured.err + _task_logs()
    # dag.test() writes the task log to stdout (no files): the scans saw the task's own lines.
    assert "CoinMarketCap quotes v1: 3 coin(s)" in seen
    # The database passwords the run used (its connections) are in none of it either.
    for name in ("MOONWATCH_LOADER_PASSWORD", "MOONWATCH_AIRFLOW_DB_PASSWORD"):
        assert_absent(airflow_db.secrets[name], f"the run's output and logs ({name})", seen)
        scan_airflow(airflow_db.secrets[name], "crypto_quotes_produce")


def _task_logs() -> str:
    folder = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return "".join(p.read_text("utf-8", "replace") for p in files)


def airflow_db_url(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"postgresql://{info.user}:{info.password}@{info.host}:{info.port}/{info.dbname}"


def _produce_xcom() -> str | None:
    with psycopg.connect(_metadata_url(), autocommit=True) as conn:
        row = conn.execute(
            "select value::text from xcom where dag_id = 'crypto_quotes_produce'"
            " and key = 'return_value' order by timestamp desc limit 1"
        ).fetchone()
    return row[0] if row else None


@pytest.fixture
def refusing_server(marker: str) -> Iterator[ReplayServer]:
    """CoinMarketCap refusing the key (401, error 1001) and, hostile, echoing it back."""
    body = cmc_body(error_code=1001, message=f"This API Key {marker} is invalid.")
    server = ReplayServer([Canned(status=401, body=body)])
    yield server
    server.close()


def test_rejected_key_leaks_neither_into_the_error_nor_the_logs(
    keyed_env: str,
    refusing_server: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    marker: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CMC_BASE_URL", refusing_server.url)
    with pytest.raises(SourceRejectedError) as raised:
        fetch_and_produce_quotes(load_settings(), ledger_store=InMemoryLedgerStore())
    assert refusing_server.headers[0]["X-CMC_PRO_API_KEY"] == marker  # it was sent...
    error = raised.value
    assert "1001" in str(error) and "CMC_API_KEY" in str(error)
    # ...and appears nowhere in the error, its chain or its traceback.
    assert_absent(marker, "the exception", "".join(traceback.format_exception(error)))
    assert_absent(marker, "the exception repr", repr(error))

    # The same through Airflow: the task fails at once (no retry) and its logs stay clean.
    run = _load_dag("crypto_quotes_produce").test()
    assert run.state == "failed"
    assert refusing_server.count == 2  # one call per attempt: a rejected key is not retried
    scan_airflow(marker, "crypto_quotes_produce")
    captured = capfd.readouterr()
    assert_absent(marker, "stdout", captured.out)
    assert_absent(marker, "stderr", captured.err)
    assert_absent(marker, "log records", caplog.text)
    for record in caplog.records:
        assert_absent(marker, f"log record of {record.name}", record.getMessage())
        if record.exc_info:
            assert_absent(marker, "a logged traceback", "".join(
                traceback.format_exception(*record.exc_info)))  # fmt: skip
    seen = caplog.text + captured.out + captured.err + _task_logs()
    assert "error 1001" in seen and "Retrying will not help" in seen  # the failure was logged


# -- the running stack: database passwords, the key, command lines, environments, files ---------
#
# Redirects (the key never follows one) are tested in tests/sources/test_http_limits.py.

# Where a password may be written: the stack's own secrets files, private to their owner.
SECRET_FILES = ("secrets.env", "airflow/passwords.json", "run/pgpass")


def _all_cmdlines() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue  # gone meanwhile
    return {pid: raw.decode("utf-8", "replace") for pid, raw in found.items()}


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[tuple[StackConfig, dict[str, str], str]]:
    """Postgres, broker and dashboard by the launcher (own home, free ports), with a marker key."""
    from moonwatch.stack.ephemeral import ephemeral_env, run_launcher

    key = f"cmc-marker-{uuid.uuid4().hex}"
    env = ephemeral_env(tmp_path / "home", CMC_API_KEY=key)
    try:
        run_launcher(env, "up", "--only", "postgres,broker,dashboard", timeout=300)
        yield StackConfig.from_env(env), env, key
    finally:
        run_launcher(env, "down", timeout=180)


def test_stack_secrets_stay_off_command_lines_out_of_logs_and_in_private_files(
    running_stack: tuple[StackConfig, dict[str, str], str],
) -> None:
    import subprocess
    import sys

    from moonwatch.stack.config import SECRET_NAMES, WAREHOUSE_DB
    from moonwatch.stack.ephemeral import live_pids

    config, env, key = running_stack
    secrets = {name: config.secrets[name] for name in SECRET_NAMES} | {"CMC_API_KEY": key}
    # A psql session through the launcher, open while the command lines are read.
    psql = subprocess.Popen(
        [sys.executable, "-m", "moonwatch.stack", "psql", "-Atc", "select pg_sleep(5)"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "pg_sleep" in line and "psql" in line for line in _all_cmdlines().values()
        ):
            time.sleep(0.1)
        cmdlines = _all_cmdlines()
        assert any("pg_sleep" in c for c in cmdlines.values()), "psql never ran"
    finally:
        psql.communicate(timeout=60)
    assert psql.returncode == 0
    for name, secret in secrets.items():
        for pid, cmdline in cmdlines.items():
            assert_absent(secret, f"the command line of pid {pid} ({name})", cmdline)

    # Every stack process's environment: no admin password, no Airflow secret, anywhere; the
    # per-service allow-lists are tested in tests/stack/test_isolation.py.
    for service, pid in live_pids(config).items():
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for name in ("MOONWATCH_PG_ADMIN_PASSWORD", "MOONWATCH_AIRFLOW_SECRET_KEY"):
            assert_absent(secrets[name], f"the environment of {service} ({name})", environ)

    # Files: passwords only in the secrets files, each 0600; logs and PID files hold none.
    data = config.pg_data
    for path in config.home.rglob("*"):
        if not path.is_file() or data in path.parents or path.parent == data.parent:
            continue
        relative = str(path.relative_to(config.home))
        content = path.read_bytes()
        holds = [n for n, s in secrets.items() if s.encode() in content]
        if relative in SECRET_FILES:
            assert path.stat().st_mode & 0o077 == 0, f"{relative} is readable by others"
        else:
            assert not holds, f"{relative} holds {holds}"
        assert path.stat().st_mode & 0o077 == 0, f"{relative} is mode {path.stat().st_mode:o}"

    # The warehouse: no password or key in any row a role can read.
    warehouse_as_admin = config.admin_url.rsplit("/", 1)[0] + "/" + WAREHOUSE_DB
    for secret in secrets.values():
        assert scan_database(warehouse_as_admin, secret, ("raw", "staging", "marts")) >= 4
